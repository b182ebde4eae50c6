import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { imageToImageGuidance, textToImageGuidance, understandingGuidance } from "../../../gpu-backend/src/sampling/guidance";

const combine = (w: Float32Array, logits: number[]) => logits.reduce((acc, l, i) => acc + w[i] * l, 0);

describe("guidance weights (docs/model.md §10 CFG formulas)", () => {
  it("t2i at cfg 4: 5c - 4u", () => {
    const g = textToImageGuidance(4);
    expect(g.roles).toEqual(["cond", "uncond"]);
    expect(Array.from(g.weights)).toEqual([5, -4]);
    const c = 1.25, u = -0.5;
    expect(combine(g.weights, [c, u])).toBeCloseTo(u + 5 * (c - u) - 0 * c, 12);
  });

  it("i2i at (2.5, 4.0): 7.5c - 2.5u_text - 4u_img", () => {
    const g = imageToImageGuidance(2.5, 4);
    expect(g.roles).toEqual(["cond", "uncondText", "uncondImage"]);
    expect(Array.from(g.weights)).toEqual([7.5, -2.5, -4]);
    const c = 0.3, ut = -1.1, ui = 2.2;
    expect(combine(g.weights, [c, ut, ui])).toBeCloseTo(c + 2.5 * (c - ut) + 4 * (c - ui), 5);
  });

  it("i2i drops zero-scale branches", () => {
    expect(imageToImageGuidance(0, 4).roles).toEqual(["cond", "uncondImage"]);
    expect(Array.from(imageToImageGuidance(0, 4).weights)).toEqual([5, -4]);
    expect(imageToImageGuidance(2.5, 0).roles).toEqual(["cond", "uncondText"]);
    expect(imageToImageGuidance(0, 0).roles).toEqual(["cond"]);
  });

  it("mmu: u + (cfg+1)(c-u)", () => {
    const g = understandingGuidance(2);
    expect(Array.from(g.weights)).toEqual([3, -2]);
    expect(combine(g.weights, [0.7, 0.1])).toBeCloseTo(0.1 + 3 * (0.7 - 0.1), 6);
  });

  it("K=1 when guidance is 0", () => {
    expect(Array.from(textToImageGuidance(0).weights)).toEqual([1]);
    expect(Array.from(understandingGuidance(0).weights)).toEqual([1]);
  });

  it("rejects negative or non-finite scales with the field named", () => {
    expect(() => textToImageGuidance(-1)).toThrow(InvalidArgument);
    try {
      imageToImageGuidance(1, Number.NaN);
      expect.unreachable();
    } catch (e) {
      expect((e as InvalidArgument).field).toBe("cfg_img");
    }
  });
});
