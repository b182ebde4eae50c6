import { describe, expect, it } from "vitest";
import { imageBlock } from "../../../gpu-backend/src/model/layout";
import { MASK } from "../../../gpu-backend/src/model/tokens";
import type { ImageToImageParams } from "../../../gpu-backend/src/sampling/image-to-image";
import { maskSchedule } from "../../../gpu-backend/src/sampling/mask-schedule";
import { runFakeEngine } from "./fake-engine";
import { contextLogits, imageToImage, P, PU, runToEnd } from "./helpers";

const img = { h: 3, w: 4, codes: Int32Array.from({ length: 12 }, (_, i) => 1000 + i) };
const base: ImageToImageParams = { prompt: P, uncondPrompt: PU, images: [img], cfgText: 2.5, cfgImage: 4, timesteps: 6, temperature: 1, seed: 77n };

describe("image-to-image sampler", () => {
  it("three branches with the reference's rows and aligned targets", () => {
    const s = imageToImage.init(base);
    const inp = imageToImage.engineInputs(s);
    expect(inp.branches.length).toBe(3);
    expect(Array.from(inp.weights)).toEqual([7.5, -2.5, -4]);
    const blk = Array.from(imageBlock(img));
    const codeStart = P.length + blk.length + 2;
    const [cond, uText, uImg] = inp.branches;
    const answer = Array.from(cond.slice(codeStart - 2));
    expect(Array.from(cond.slice(0, codeStart - 2))).toEqual([...P.slice(0, -1), ...blk, P[P.length - 1]]);
    expect(Array.from(uText)).toEqual([...PU.slice(0, -1), ...blk, PU[PU.length - 1], ...answer]);
    expect(Array.from(uImg)).toEqual([...P, ...answer]);
    const prefixLens = [codeStart - 2, PU.length + blk.length, P.length];
    for (let m = 0; m < inp.uniforms.length; m++) {
      for (let k = 0; k < 3; k++) {
        expect(inp.branches[k][inp.targets[k][m]]).toBe(MASK);
        expect(inp.targets[k][m] - prefixLens[k]).toBe(inp.targets[0][m] - (codeStart - 2));
      }
    }
    expect(inp.uniforms.length).toBe(12); // output grid = input grid
  });

  it("runs to completion deterministically on the input's grid", () => {
    const a = runToEnd(imageToImage, base);
    expect(a.steps.length).toBe(maskSchedule(12, 6).length);
    const codes = imageToImage.imageCodes(a.state);
    expect(codes.length).toBe(12);
    expect(Array.from(imageToImage.imageCodes(runToEnd(imageToImage, base).state))).toEqual(Array.from(codes));
    expect(Array.from(imageToImage.imageCodes(runToEnd(imageToImage, { ...base, seed: 78n }).state))).not.toEqual(Array.from(codes));
    // The image branch matters: a different input image changes the result.
    const other = { ...img, codes: img.codes.map((c) => c + 1) };
    expect(Array.from(imageToImage.imageCodes(runToEnd(imageToImage, { ...base, images: [other] }).state))).not.toEqual(Array.from(codes));
  });

  it("drops a zero-scale branch", () => {
    const inp = imageToImage.engineInputs(imageToImage.init({ ...base, cfgText: 0 }));
    expect(inp.branches.length).toBe(2);
    expect(Array.from(inp.weights)).toEqual([5, -4]);
    expect(inp.branches[1].length).toBe(P.length + inp.branches[0].length - (P.length + imageBlock(img).length));
    expect(imageToImage.engineInputs(imageToImage.init({ ...base, cfgText: 0, cfgImage: 0 })).branches.length).toBe(1);
  });

  it("style transfer: two images, output on the style image's grid", () => {
    const style = { h: 2, w: 5, codes: new Int32Array(10).fill(42) };
    const p = { ...base, images: [img, style] };
    const s = imageToImage.init(p);
    expect(s.grid).toEqual({ h: 2, w: 5 });
    const inp = imageToImage.engineInputs(s);
    const blocks = [...imageBlock(img), ...imageBlock(style)];
    expect(Array.from(inp.branches[0].slice(P.length - 1, P.length - 1 + blocks.length))).toEqual(blocks);
    expect(Array.from(inp.branches[2].slice(0, P.length))).toEqual(P); // uncond_image = P + answer
    const run = runToEnd(imageToImage, p);
    expect(imageToImage.imageCodes(run.state).length).toBe(10);
    for (const st of run.steps) for (let m = 0; m < st.uniforms.length; m++) expect(st.branches[1][st.targets[1][m]]).toBe(MASK);
  });

  it("uncond rows track the current state between steps", () => {
    const s = imageToImage.init(base);
    const s2 = imageToImage.advance(s, runFakeEngine(imageToImage.engineInputs(s), { logits: contextLogits }));
    const inp = imageToImage.engineInputs(s2);
    const tail = Array.from(s2.x.slice(s2.codeStart - 2));
    for (const b of inp.branches.slice(1)) expect(Array.from(b.slice(b.length - tail.length))).toEqual(tail);
  });
});
