// The painting blend (model/paint-blend.ts): the caller's pixels outside the mask, the decode's deep inside,
// a feathered seam inside the mask's edge, at the original size.
import { describe, expect, it } from "vitest";
import { blendPainted, seamWeights, SEAM_PX } from "../../../gpu-backend/src/model/paint-blend";
import type { PixelMask } from "../../../gpu-backend/src/model/mask-grid";
import type { RgbImage } from "../../../gpu-backend/src/model/image-codec";

function rect(W: number, H: number, x0: number, y0: number, x1: number, y1: number): PixelMask {
  const regenerate = new Uint8Array(W * H);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) regenerate[y * W + x] = 1;
  return { width: W, height: H, regenerate };
}

function solid(W: number, H: number, v: number): RgbImage {
  return { width: W, height: H, data: new Uint8Array(3 * W * H).fill(v) };
}

function noise(W: number, H: number, seed: number): RgbImage {
  const data = new Uint8Array(3 * W * H);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width: W, height: H, data };
}

describe("seamWeights", () => {
  it("is 0 outside the mask, rises with the distance to its edge, 1 from the seam width on", () => {
    const m = rect(64, 48, 10, 8, 50, 40);
    const w = seamWeights(m);
    const at = (x: number, y: number) => w[y * 64 + x];
    expect(at(9, 20)).toBe(0);
    expect(at(5, 5)).toBe(0);
    // Along a row from the left edge inward: 1/8, 2/8, ... 1.
    const row = Array.from({ length: 12 }, (_, i) => at(10 + i, 24));
    expect(row[0]).toBeCloseTo(1 / SEAM_PX, 6);
    expect(row[3]).toBeCloseTo(4 / SEAM_PX, 6);
    for (let i = 1; i < row.length; i++) expect(row[i]).toBeGreaterThanOrEqual(row[i - 1]);
    expect(row[SEAM_PX - 1]).toBe(1);
    expect(at(30, 24)).toBe(1);
    // Euclidean near a corner: (10,8) is 1 from both edges, so sqrt(1)=1; (11,9) is at distance 2.
    expect(at(11, 9)).toBeCloseTo(2 / SEAM_PX, 6);
  });

  it("a mask over the whole image has no seam; the image border is not an edge", () => {
    expect([...seamWeights(rect(20, 20, 0, 0, 20, 20))].every((v) => v === 1)).toBe(true);
    const left = seamWeights(rect(40, 20, 0, 0, 20, 20));
    expect(left[10 * 40 + 0]).toBe(1); // at the image border, 20 px from the kept side
    expect(left[10 * 40 + 19]).toBeCloseTo(1 / SEAM_PX, 6);
  });
});

describe("blendPainted", () => {
  it("keeps the original outside the mask byte for byte, takes the decode deep inside, feathers between", () => {
    const W = 80, H = 64;
    const original = noise(W, H, 1);
    const mask = rect(W, H, 20, 16, 60, 48);
    for (const seed of [2, 3]) {
      const decoded = noise(W, H, seed);
      const out = blendPainted(original, decoded, mask);
      expect([out.width, out.height]).toEqual([W, H]);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const i = c * W * H + y * W + x;
            if (!mask.regenerate[y * W + x]) expect(out.data[i]).toBe(original.data[i]);
            else if (x >= 20 + SEAM_PX && x < 60 - SEAM_PX && y >= 16 + SEAM_PX && y < 48 - SEAM_PX) expect(out.data[i]).toBe(decoded.data[i]);
          }
    }
    // In the seam: a mix strictly between two flat images.
    const mixed = blendPainted(solid(W, H, 0), solid(W, H, 200), mask);
    const seam = [0, 1, 2, 3].map((d) => mixed.data[30 * W + 20 + d]);
    expect(seam).toEqual([25, 50, 75, 100]);
  });

  it("resizes a decode made at the size floored to 16 up to the original's", () => {
    const original = solid(70, 50, 10);
    const out = blendPainted(original, solid(64, 48, 240), rect(70, 50, 0, 0, 35, 50));
    expect([out.width, out.height]).toEqual([70, 50]);
    expect(out.data[25 * 70 + 5]).toBe(240);
    expect(out.data[25 * 70 + 50]).toBe(10);
  });
});
