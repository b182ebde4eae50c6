import { describe, expect, it } from "vitest";
import { P, PU, textToImage, understand } from "./helpers";

describe("step contract", () => {
  it("sampler inputs are well-formed engine calls", () => {
    const inputs = [
      textToImage.engineInputs(textToImage.init({ prompt: P, uncondPrompt: PU, grid: { h: 2, w: 3 }, cfgScale: 4, timesteps: 4, temperature: 1, seed: 0n })),
      understand.engineInputs(understand.init({ prompt: P, images: [], genLength: 8, blockLength: 8, steps: 4, cfgScale: 1, temperature: 0, seed: 0n })),
    ];
    for (const inp of inputs) {
      const k = inp.branches.length;
      expect(inp.targets.length).toBe(k);
      expect(inp.weights.length).toBe(k);
      for (const t of inp.targets) expect(t.length).toBe(inp.uniforms.length);
      for (let b = 0; b < k; b++) for (const pos of inp.targets[b]) expect(pos >= 0 && pos < inp.branches[b].length).toBe(true);
      for (const u of inp.uniforms) expect(u > 0 && u < 1).toBe(true);
    }
  });
});
