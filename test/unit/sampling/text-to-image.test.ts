import { describe, expect, it } from "vitest";
import { textToImageLayout } from "../../../gpu-backend/src/model/layout";
import { IMAGE_OFFSET, MASK, NEWLINE } from "../../../gpu-backend/src/model/tokens";
import { keepN, maskSchedule } from "../../../gpu-backend/src/sampling/mask-schedule";
import { remaskScores, selectRemask } from "../../../gpu-backend/src/sampling/remask";
import { uniforms } from "../../../gpu-backend/src/sampling/rng";
import type { TextToImageParams } from "../../../gpu-backend/src/sampling/text-to-image";
import { runFakeEngine } from "./fake-engine";
import { contextLogits, P, PU, runToEnd, textToImage } from "./helpers";

const base: TextToImageParams = { prompt: P, uncondPrompt: PU, grid: { h: 4, w: 6 }, cfgScale: 4, timesteps: 8, temperature: 1, seed: 1234n };

/**
 * An independent transcription of the reference loop (docs/model.md §3.4) on plain arrays: it rebuilds the
 * uncond row as Pu + x[code_start-2:] and finds the masked positions itself, then uses the same engine math
 * and the same RNG counters. The sampler must agree with it exactly.
 */
function referenceLoop(p: TextToImageParams): Int32Array {
  const l = textToImageLayout(p.prompt, p.uncondPrompt, p.grid, p.known);
  const x = Array.from(l.cond);
  const N = x.filter((t) => t === MASK).length;
  for (let s = 0; s < p.timesteps; s++) {
    const masked = x.flatMap((t, i) => (t === MASK ? [i] : []));
    if (masked.length === 0) break;
    const u = [...Array.from(p.uncondPrompt), ...x.slice(l.codeStart - 2)];
    const shift = p.uncondPrompt.length - (l.codeStart - 2);
    const cfg = p.cfgScale;
    const out = runFakeEngine(
      {
        mode: "image",
        branches: cfg > 0 ? [Int32Array.from(x), Int32Array.from(u)] : [Int32Array.from(x)],
        targets: cfg > 0 ? [Int32Array.from(masked), Int32Array.from(masked.map((m) => m + shift))] : [Int32Array.from(masked)],
        weights: cfg > 0 ? Float32Array.of(1 + cfg, -cfg) : Float32Array.of(1),
        uniforms: uniforms(p.seed, "sample", s, masked.length),
        temperature: p.temperature,
      },
      { logits: contextLogits },
    );
    masked.forEach((pos, m) => (x[pos] = out.tokens[m] + IMAGE_OFFSET));
    const scores = remaskScores(out.confidence, p.temperature, uniforms(p.seed, "remask", s, masked.length));
    for (const m of selectRemask(scores, Int32Array.from(masked), keepN(s, N, p.timesteps))) x[masked[m]] = MASK;
  }
  return Int32Array.from(x.slice(l.codeStart, x.length - 2).filter((t) => t !== NEWLINE).map((t) => t - IMAGE_OFFSET));
}

describe("text-to-image sampler", () => {
  it("matches an independent transcription of the reference loop", () => {
    const run = runToEnd(textToImage, base);
    expect(Array.from(textToImage.imageCodes(run.state))).toEqual(Array.from(referenceLoop(base)));
    const noCfg = { ...base, cfgScale: 0, temperature: 0.7 };
    expect(Array.from(textToImage.imageCodes(runToEnd(textToImage, noCfg).state))).toEqual(Array.from(referenceLoop(noCfg)));
  });

  it("same seed, same codes; different seed, different codes", () => {
    const a = textToImage.imageCodes(runToEnd(textToImage, base).state);
    const b = textToImage.imageCodes(runToEnd(textToImage, { ...base }).state);
    const c = textToImage.imageCodes(runToEnd(textToImage, { ...base, seed: 1235n }).state);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    for (const v of a) expect(v >= 0 && v < 8192).toBe(true);
  });

  it("interleaving requests (a different batch order) does not change any result", () => {
    const pa = base, pb = { ...base, seed: 99n, grid: { h: 3, w: 5 } };
    const alone = [runToEnd(textToImage, pa).state, runToEnd(textToImage, pb).state].map(textToImage.imageCodes);
    // B first, then alternate B/A step by step.
    let a = textToImage.init(pa), b = textToImage.init(pb);
    while (!textToImage.isDone(a) || !textToImage.isDone(b)) {
      if (!textToImage.isDone(b)) b = textToImage.advance(b, runFakeEngine(textToImage.engineInputs(b), { logits: contextLogits }));
      if (!textToImage.isDone(a)) a = textToImage.advance(a, runFakeEngine(textToImage.engineInputs(a), { logits: contextLogits }));
    }
    expect(Array.from(textToImage.imageCodes(a))).toEqual(Array.from(alone[0]));
    expect(Array.from(textToImage.imageCodes(b))).toEqual(Array.from(alone[1]));
  });

  it("follows the schedule: M per step, total steps, committed cells never change", () => {
    const p = { ...base, grid: { h: 8, w: 8 }, timesteps: 10 };
    const run = runToEnd(textToImage, p);
    const sched = maskSchedule(64, 10);
    expect(run.state.totalSteps).toBe(sched.length);
    expect(run.steps.length).toBe(sched.length);
    expect(run.steps.map((s) => s.uniforms.length)).toEqual([64, ...sched.slice(0, -1)]);
    for (let i = 1; i < run.states.length; i++) {
      const prev = run.states[i - 1].x, cur = run.states[i].x;
      expect(run.states[i].masked.length).toBe(sched[i - 1]);
      for (let j = 0; j < prev.length; j++) if (prev[j] !== MASK) expect(cur[j]).toBe(prev[j]);
    }
  });

  it("sends cond and uncond rows with aligned targets", () => {
    const s = textToImage.init(base);
    const inp = textToImage.engineInputs(s);
    expect(inp.mode).toBe("image");
    expect(inp.branches.length).toBe(2);
    expect(Array.from(inp.weights)).toEqual([5, -4]);
    const [cond, uncond] = inp.branches;
    const codeStart = P.length + 2;
    expect(Array.from(uncond.slice(0, PU.length))).toEqual(PU);
    expect(Array.from(uncond.slice(PU.length))).toEqual(Array.from(cond.slice(codeStart - 2)));
    for (let m = 0; m < inp.uniforms.length; m++) {
      expect(cond[inp.targets[0][m]]).toBe(MASK);
      expect(uncond[inp.targets[1][m]]).toBe(MASK);
      expect(inp.targets[1][m] - PU.length).toBe(inp.targets[0][m] - (codeStart - 2));
    }
    expect(inp.uniforms.length).toBe(24);
    // Mid-run the uncond row carries the current state.
    const s2 = textToImage.advance(s, runFakeEngine(inp, { logits: contextLogits }));
    const inp2 = textToImage.engineInputs(s2);
    expect(Array.from(inp2.branches[1].slice(PU.length))).toEqual(Array.from(s2.x.slice(codeStart - 2)));
    expect(inp2.branches[1].some((t) => t >= IMAGE_OFFSET)).toBe(true);
  });

  it("guidance 0 sends one branch", () => {
    const inp = textToImage.engineInputs(textToImage.init({ ...base, cfgScale: 0 }));
    expect(inp.branches.length).toBe(1);
    expect(Array.from(inp.weights)).toEqual([1]);
  });

  it("temperature 0 commits the argmax code", () => {
    const s = textToImage.init({ ...base, temperature: 0, cfgScale: 0 });
    const inp = textToImage.engineInputs(s);
    const out = runFakeEngine(inp, { logits: contextLogits });
    for (let m = 0; m < 3; m++) {
      const l = contextLogits(inp.branches[0], inp.targets[0][m]);
      expect(out.tokens[m]).toBe(l.indexOf(Math.max(...l)));
    }
  });

  it("advance is pure: the old state is untouched", () => {
    const s = textToImage.init(base);
    const before = s.x.slice();
    const maskedBefore = s.masked.slice();
    const s2 = textToImage.advance(s, runFakeEngine(textToImage.engineInputs(s), { logits: contextLogits }));
    expect(s.x).toEqual(before);
    expect(s.masked).toEqual(maskedBefore);
    expect(s.step).toBe(0);
    expect(s2.step).toBe(1);
  });

  it("rejects malformed engine outputs and bad parameters", () => {
    const s = textToImage.init(base);
    expect(() => textToImage.advance(s, { tokens: new Int32Array(3), confidence: new Float32Array(3) })).toThrow(/24 target slots/);
    const bad = { tokens: new Int32Array(24).fill(8192), confidence: new Float32Array(24) };
    expect(() => textToImage.advance(s, bad)).toThrow(/outside 0..8191/);
    expect(() => textToImage.init({ ...base, timesteps: 0 })).toThrow(/steps/);
    expect(() => textToImage.init({ ...base, temperature: -1 })).toThrow(/temperature/);
    expect(() => textToImage.imageCodes(s)).toThrow(/not finished/);
  });
});

describe("inpainting / outpainting through the text-to-image sampler", () => {
  const h = 5, w = 6;
  const codes = Int32Array.from({ length: h * w }, (_, i) => (i * 37) % 8192);
  // A non-rectangular region: a diagonal band.
  const regenerate = Uint8Array.from({ length: h * w }, (_, i) => (Math.abs((i % w) - Math.floor(i / w)) <= 1 ? 1 : 0));
  const nMasked = regenerate.reduce((a, b) => a + b, 0);
  const p: TextToImageParams = { ...base, grid: { h, w }, known: { codes, regenerate }, timesteps: 6 };

  it("never changes known cells and counts only masked cells", () => {
    const run = runToEnd(textToImage, p);
    expect(run.states[0].initialMasked).toBe(nMasked);
    expect(run.steps[0].uniforms.length).toBe(nMasked);
    const sched = maskSchedule(nMasked, 6);
    expect(run.steps.length).toBe(sched.length);
    // Every target of every step is a regenerate cell.
    const codeStart = P.length + 2;
    for (const st of run.steps) {
      for (const pos of st.targets[0]) {
        const rel = pos - codeStart;
        const cell = Math.floor(rel / (w + 1)) * w + (rel % (w + 1));
        expect(regenerate[cell]).toBe(1);
      }
    }
    const out = textToImage.imageCodes(run.state);
    for (let i = 0; i < h * w; i++) if (!regenerate[i]) expect(out[i]).toBe(codes[i]);
    expect(Array.from(out)).not.toEqual(Array.from(codes));
    expect(Array.from(out)).toEqual(Array.from(referenceLoop(p)));
  });

  it("nothing to regenerate means done immediately", () => {
    const s = textToImage.init({ ...p, known: { codes, regenerate: new Uint8Array(h * w) } });
    expect(textToImage.isDone(s)).toBe(true);
    expect(Array.from(textToImage.imageCodes(s))).toEqual(Array.from(codes));
  });
});
