import { describe, expect, it } from "vitest";
import {
  addBreakLine,
  answerRegionLength,
  codeStart,
  extractImageCodes,
  gridForPixels,
  imageBlock,
  imageBlockLength,
  imageToImageLayout,
  textToImageLayout,
  uncondOffset,
  uncondRow,
  understandingLayout,
} from "../../../gpu-backend/src/model/layout";
import { BOA, BOI, EOA, EOI, IMAGE_OFFSET, MASK, NEWLINE } from "../../../gpu-backend/src/model/tokens";

const P = [126080, 126340, 10, 11, 12, 126341, 126342, 20, 21, 126343];
const PU = [126080, 126340, 10, 11, 12, 126341, 126342, 126351, 126343];

describe("add_break_line and blocks (docs/model.md §2.4, §10)", () => {
  it("newline after every row, the last included", () => {
    const [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6];
    expect(Array.from(addBreakLine([a, b, c, d, e, f], 2, 3, 99))).toEqual([a, b, c, 99, d, e, f, 99]);
    expect(Array.from(addBreakLine([a, b, c, d, e, f], 2, 3))).toEqual([a, b, c, NEWLINE, d, e, f, NEWLINE]);
    expect(() => addBreakLine([1, 2, 3], 2, 3)).toThrow();
  });

  it("grids from pixel sizes (H x W)", () => {
    expect(gridForPixels(1024, 1024)).toEqual({ h: 64, w: 64 });
    expect(gridForPixels(768, 1536)).toEqual({ h: 48, w: 96 });
    expect(gridForPixels(512, 512)).toEqual({ h: 32, w: 32 });
    expect(gridForPixels(527, 1039)).toEqual({ h: 32, w: 64 });
  });

  it("answer region and image block lengths", () => {
    expect(answerRegionLength(64, 64)).toBe(4164);
    expect(answerRegionLength(48, 96)).toBe(4660);
    expect(answerRegionLength(32, 32)).toBe(1060);
    expect(imageBlockLength(32, 32)).toBe(1058);
    expect(imageBlockLength(64, 64)).toBe(4162);
    const blk = imageBlock({ h: 32, w: 32, codes: new Int32Array(1024).fill(7) });
    expect(blk.length).toBe(1058);
    expect(blk[0]).toBe(BOI);
    expect(blk[1]).toBe(IMAGE_OFFSET + 7);
    expect(blk[33]).toBe(NEWLINE);
    expect(blk[1057]).toBe(EOI);
    expect(() => imageBlock({ h: 1, w: 2, codes: Int32Array.of(0, 8192) })).toThrow(/outside/);
  });
});

describe("text-to-image layout (docs/model.md §3.1)", () => {
  for (const [H, W, len] of [[1024, 1024, 4164], [768, 1536, 4660], [512, 512, 1060]] as const) {
    it(`${H}x${W}`, () => {
      const g = gridForPixels(H, W);
      const l = textToImageLayout(P, PU, g);
      expect(l.cond.length).toBe(P.length + len);
      expect(l.codeStart).toBe(P.length + 2);
      expect(l.codeStart).toBe(codeStart.textToImage(P.length));
      expect(l.cond[l.codeStart - 2]).toBe(BOA);
      expect(l.cond[l.codeStart - 1]).toBe(BOI);
      expect(l.cond[l.codeStart]).toBe(MASK);
      expect(Array.from(l.cond.slice(-2))).toEqual([EOI, EOA]);
      expect(l.cond.filter((t) => t === MASK).length).toBe(g.h * g.w);
      expect(l.cond.filter((t) => t === NEWLINE).length).toBe(g.h);
      // uncond = Pu + x[codeStart-2:]
      const u = uncondRow(l.uncondPrefix, l.cond, l.codeStart);
      expect(u.length).toBe(PU.length + len);
      expect(Array.from(u.slice(0, PU.length))).toEqual(PU);
      const off = uncondOffset(PU.length, l.codeStart);
      expect(u[l.codeStart + off]).toBe(l.cond[l.codeStart]);
      expect(u[l.codeStart + off - 2]).toBe(BOA);
    });
  }

  it("painting keeps known cells and masks only regenerate cells", () => {
    const codes = Int32Array.from({ length: 6 }, (_, i) => 100 + i);
    const regenerate = Uint8Array.of(0, 1, 0, 0, 1, 1);
    const l = textToImageLayout(P, PU, { h: 2, w: 3 }, { codes, regenerate });
    const cells = Array.from(l.cond.slice(l.codeStart, l.codeStart + 8));
    expect(cells).toEqual([IMAGE_OFFSET + 100, MASK, IMAGE_OFFSET + 102, NEWLINE, IMAGE_OFFSET + 103, MASK, MASK, NEWLINE]);
  });
});

describe("image-to-image layout (docs/model.md §4.1, §4.2)", () => {
  for (const [H, W, blockLen, answerLen] of [[1024, 1024, 4162, 4164], [768, 1536, 4658, 4660], [512, 512, 1058, 1060]] as const) {
    it(`lengths and code_start with a ${H}x${W} input and output`, () => {
      const g = gridForPixels(H, W);
      const l = imageToImageLayout(P, PU, [{ ...g, codes: new Int32Array(g.h * g.w) }], g);
      expect(l.codeStart).toBe(P.length + blockLen + 2);
      expect(l.cond.length).toBe(P.length + blockLen + answerLen);
      expect(l.cond[l.codeStart]).toBe(MASK);
      expect(l.cond[l.codeStart - 1]).toBe(BOI);
      expect(l.uncondTextPrefix.length).toBe(PU.length + blockLen);
    });
  }

  it("single image at 512x512", () => {
    const img = { h: 32, w: 32, codes: new Int32Array(1024).fill(3) };
    const l = imageToImageLayout(P, PU, [img], { h: 32, w: 32 });
    expect(l.codeStart).toBe(P.length + 1058 + 2);
    expect(l.codeStart).toBe(codeStart.imageToImage(P.length, 1058));
    expect(l.cond.length).toBe(P.length + 1058 + 1060);
    // P[:-1] + IMG + P[-1:]
    expect(Array.from(l.cond.slice(0, P.length - 1))).toEqual(P.slice(0, -1));
    expect(l.cond[P.length - 1]).toBe(BOI);
    expect(l.cond[P.length - 1 + 1057]).toBe(EOI);
    expect(l.cond[P.length - 1 + 1058]).toBe(P[P.length - 1]);
    expect(l.cond[l.codeStart - 2]).toBe(BOA);
    expect(l.cond[l.codeStart]).toBe(MASK);
    expect(Array.from(l.uncondTextPrefix)).toEqual([...PU.slice(0, -1), ...Array.from(imageBlock(img)), PU[PU.length - 1]]);
    expect(Array.from(l.uncondImagePrefix)).toEqual(P);
  });

  it("style transfer: content then style image, output on the caller's grid", () => {
    const content = { h: 2, w: 3, codes: new Int32Array(6).fill(1) };
    const style = { h: 3, w: 2, codes: new Int32Array(6).fill(2) };
    const l = imageToImageLayout(P, PU, [content, style], { h: 3, w: 2 });
    const imgs = [...imageBlock(content), ...imageBlock(style)];
    expect(l.codeStart).toBe(P.length + imgs.length + 2);
    expect(Array.from(l.cond.slice(P.length - 1, P.length - 1 + imgs.length))).toEqual(imgs);
    expect(l.cond.length).toBe(P.length + imgs.length + answerRegionLength(3, 2));
  });
});

describe("understanding layout (docs/model.md §5.1)", () => {
  for (const [H, W, blockLen] of [[1024, 1024, 4162], [768, 1536, 4658], [512, 512, 1058]] as const) {
    it(`code_start with a ${H}x${W} image`, () => {
      const g = gridForPixels(H, W);
      const l = understandingLayout(P, [{ ...g, codes: new Int32Array(g.h * g.w) }], 256);
      expect(l.codeStart).toBe(P.length + blockLen + 1);
      expect(l.row.length).toBe(P.length + blockLen + 258);
      expect(l.row[l.codeStart]).toBe(MASK);
      expect(l.row[l.codeStart - 1]).toBe(BOA);
    });
  }

  it("image block once (not the reference's doubled newlines, issue #3)", () => {
    const img = { h: 32, w: 32, codes: new Int32Array(1024).fill(5) };
    const l = understandingLayout(P, [img], 128);
    expect(l.codeStart).toBe(P.length + 1058 + 1);
    expect(l.codeStart).toBe(codeStart.understanding(P.length, 1058));
    expect(l.row.length).toBe(P.length + 1058 + 128 + 2);
    expect(l.row.filter((t) => t === BOI).length).toBe(1);
    expect(l.row.filter((t) => t === NEWLINE).length).toBe(32);
    expect(l.row[l.codeStart - 1]).toBe(BOA);
    expect(l.row[l.row.length - 1]).toBe(EOA);
    expect(l.row[P.length - 1 + 1058]).toBe(P[P.length - 1]);
    expect(l.row.filter((t) => t === MASK).length).toBe(128);
  });
});

describe("extractImageCodes", () => {
  it("strips newlines and offsets; rejects unfinished rows", () => {
    const l = textToImageLayout(P, PU, { h: 2, w: 2 });
    const x = l.cond.slice();
    const vals = [5, 6, 7, 8];
    let i = 0;
    for (let p = l.codeStart; p < l.codeStart + 6; p++) if (x[p] === MASK) x[p] = IMAGE_OFFSET + vals[i++];
    expect(Array.from(extractImageCodes(x, l.codeStart, { h: 2, w: 2 }))).toEqual(vals);
    expect(() => extractImageCodes(l.cond, l.codeStart, { h: 2, w: 2 })).toThrow(/not an image code/);
    expect(() => extractImageCodes(x, l.codeStart + 1, { h: 2, w: 2 })).toThrow();
  });
});
