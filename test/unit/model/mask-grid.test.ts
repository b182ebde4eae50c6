import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { countRegenerate, decodeMask, luma, maskGridFromImage, maskToGrid, rectangleMask } from "../../../gpu-backend/src/model/mask-grid";

function pixelMask(w: number, h: number, f: (x: number, y: number) => boolean) {
  const regenerate = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) regenerate[y * w + x] = f(x, y) ? 1 : 0;
  return { width: w, height: h, regenerate };
}

describe("maskToGrid (area average > 0.5)", () => {
  it("a disc: a cell regenerates iff more than half its pixels do", () => {
    const W = 64, H = 48; // 4 x 3 cells of 16x16
    const m = pixelMask(W, H, (x, y) => (x - 30) ** 2 + (y - 22) ** 2 < 18 ** 2);
    const grid = maskToGrid(m, { h: 3, w: 4 });
    // Brute-force reference: count pixels per 16x16 cell.
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 4; j++) {
        let n = 0;
        for (let y = i * 16; y < i * 16 + 16; y++) for (let x = j * 16; x < j * 16 + 16; x++) n += m.regenerate[y * W + x];
        expect(grid[i * 4 + j], `cell ${i},${j} (${n}/256)`).toBe(n > 128 ? 1 : 0);
      }
    // The disc covers the middle cells but not the corners.
    expect(grid[0]).toBe(0);
    expect(grid[1 * 4 + 1]).toBe(1);
    expect(grid[1 * 4 + 2]).toBe(1);
  });

  it("exactly half is not enough (strict > 0.5)", () => {
    const m = pixelMask(32, 16, (x) => x < 8 || (x >= 16 && x < 25));
    expect(Array.from(maskToGrid(m, { h: 1, w: 2 }))).toEqual([0, 1]);
  });

  it("non-divisible sizes use adaptive-pool windows", () => {
    // 5 px onto 2 cells: windows [0,3) and [2,5); pixels 0..2 set -> cell 0 full, cell 1 has 1/3.
    const m = pixelMask(5, 1, (x) => x < 3);
    expect(Array.from(maskToGrid(m, { h: 1, w: 2 }))).toEqual([1, 0]);
  });
});

describe("decodeMask", () => {
  it("alpha channel: transparent (alpha < 128) means regenerate", async () => {
    const rgba = Buffer.alloc(4 * 4 * 4);
    for (let i = 0; i < 16; i++) rgba[i * 4 + 3] = i < 8 ? 0 : i < 12 ? 127 : 128; // rows 0-1 transparent, row 2 just below, row 3 at threshold
    const png = await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer();
    const m = await decodeMask(new Uint8Array(png), { width: 4, height: 4, maxPixels: 100 });
    expect(Array.from(m.regenerate)).toEqual([...Array(12).fill(1), 0, 0, 0, 0]);
  });

  it("no alpha: luma >= 128 means regenerate (PIL's L conversion)", async () => {
    const rgb = Buffer.from([255, 255, 255, 0, 0, 0, 128, 128, 128, 127, 127, 127, 0, 255, 0, 255, 0, 0]);
    const png = await sharp(rgb, { raw: { width: 6, height: 1, channels: 3 } }).png().toBuffer();
    const m = await decodeMask(new Uint8Array(png), { width: 6, height: 1, maxPixels: 100 });
    expect(Array.from(m.regenerate)).toEqual([1, 0, 1, 0, 1, 0]);
    expect(luma(0, 255, 0)).toBe(150);
    expect(luma(255, 0, 0)).toBe(76);
  });

  it("rejects a mask whose size differs from the image, naming the field", async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "white" } }).png().toBuffer();
    const err = await decodeMask(new Uint8Array(png), { width: 8, height: 9, maxPixels: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect(err.field).toBe("mask");
    expect(err.message).toMatch(/8x8 but the image is 8x9/);
  });

  it("maskGridFromImage composes decode and grid", async () => {
    const png = await sharp({ create: { width: 32, height: 16, channels: 3, background: "white" } }).png().toBuffer();
    const g = await maskGridFromImage(new Uint8Array(png), { width: 32, height: 16, maxPixels: 1000, grid: { h: 1, w: 2 } });
    expect(Array.from(g)).toEqual([1, 1]);
  });
});

describe("rectangleMask (reference scripts)", () => {
  it("inpaint 0.5 x 0.5 regenerates the centre quarter; outpaint inverts", () => {
    const m = rectangleMask(64, 64, 0.5, 0.5, "inpaint");
    expect(countRegenerate(m.regenerate)).toBe(32 * 32);
    expect(m.regenerate[16 * 64 + 16]).toBe(1);
    expect(m.regenerate[15 * 64 + 16]).toBe(0);
    const grid = maskToGrid(m, { h: 4, w: 4 });
    expect(Array.from(grid)).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    const o = rectangleMask(160, 32, 1, 0.2, "outpaint");
    expect(countRegenerate(o.regenerate)).toBe(160 * 32 - 32 * 32);
    expect(Array.from(maskToGrid(o, { h: 2, w: 10 }).slice(0, 10))).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 1, 1]);
    expect(() => rectangleMask(8, 8, 1.5, 0.5, "inpaint")).toThrow(InvalidArgument);
  });
});
