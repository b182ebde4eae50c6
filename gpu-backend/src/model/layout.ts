// Token-row layouts of every DiMOO task (docs/model.md §2.4, §3.1, §4, §5.1). Everything the model sees is
// one flat row: prompt ids, image blocks whose rows are separated by NEWLINE (after EVERY row: that is how
// the model learns the aspect ratio), and an answer region between <answer> and </answer>. Samplers only
// ever change cells inside the answer region; these functions build the rows and read results back out.

import { BOA, BOI, CODEBOOK_SIZE, EOA, EOI, IMAGE_OFFSET, MASK, NEWLINE, VQ_DOWNSAMPLE } from "./tokens";

/** A VQ grid: h rows by w columns of 16x16-pixel cells. */
export interface Grid {
  h: number;
  w: number;
}

/** Codebook indices (0..8191) of one image on its grid, row-major. */
export interface ImageCodes extends Grid {
  codes: Int32Array;
}

function checkGrid(h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new RangeError(`bad grid ${h}x${w}`);
}

/** VQ grid of an H x W pixel image (floor, as calculate_vq_params does). */
export function gridForPixels(height: number, width: number): Grid {
  return { h: Math.floor(height / VQ_DOWNSAMPLE), w: Math.floor(width / VQ_DOWNSAMPLE) };
}

/** `[r0..., NL, r1..., NL, ...]`: newline after every row, the last included. */
export function addBreakLine(seq: ArrayLike<number>, h: number, w: number, newline: number = NEWLINE): Int32Array {
  checkGrid(h, w);
  if (seq.length !== h * w) throw new RangeError(`addBreakLine: ${seq.length} tokens for a ${h}x${w} grid`);
  const out = new Int32Array(h * (w + 1));
  let o = 0;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) out[o++] = seq[r * w + c];
    out[o++] = newline;
  }
  return out;
}

/** Length of an input image block `[BOI] rows [EOI]`: h(w+1)+2. */
export function imageBlockLength(h: number, w: number): number {
  return h * (w + 1) + 2;
}

/** Length of a generated-image answer region `[BOA, BOI] rows [EOI, EOA]`: h(w+1)+4. */
export function answerRegionLength(h: number, w: number): number {
  return h * (w + 1) + 4;
}

function checkCodes(codes: ArrayLike<number>): void {
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (!Number.isInteger(c) || c < 0 || c >= CODEBOOK_SIZE) throw new RangeError(`code ${c} at ${i} is outside 0..${CODEBOOK_SIZE - 1}`);
  }
}

/** An input image as the model sees it: `[BOI] + rows(codes + IMAGE_OFFSET) + [EOI]`. */
export function imageBlock(img: ImageCodes): Int32Array {
  checkCodes(img.codes);
  const ids = new Int32Array(img.codes.length);
  for (let i = 0; i < ids.length; i++) ids[i] = img.codes[i] + IMAGE_OFFSET;
  return concat([BOI], addBreakLine(ids, img.h, img.w), [EOI]);
}

/**
 * The region the image samplers fill: `[BOA, BOI] + rows + [EOI, EOA]`, every cell MASK, or for
 * inpainting/outpainting the known cells' codes with only `regenerate[i] = 1` cells MASK.
 */
export function imageAnswerRegion(grid: Grid, known?: { codes: Int32Array; regenerate: Uint8Array }): Int32Array {
  const { h, w } = grid;
  checkGrid(h, w);
  const cells = new Int32Array(h * w).fill(MASK);
  if (known) {
    if (known.codes.length !== h * w || known.regenerate.length !== h * w) {
      throw new RangeError(`known cells: ${known.codes.length} codes / ${known.regenerate.length} mask cells for a ${h}x${w} grid`);
    }
    checkCodes(known.codes);
    for (let i = 0; i < cells.length; i++) if (!known.regenerate[i]) cells[i] = known.codes[i] + IMAGE_OFFSET;
  }
  return concat([BOA, BOI], addBreakLine(cells, h, w), [EOI, EOA]);
}

/** Text-to-image (and painting) rows. The uncond row changes every step: see uncondRow. */
export interface TextToImageLayout {
  cond: Int32Array;
  /** Pu: prefix of the unconditional row. */
  uncondPrefix: Int32Array;
  /** Index in `cond` of the first image cell: len(P) + 2. */
  codeStart: number;
  grid: Grid;
}

/** `cond = P + [BOA, BOI] + rows + [EOI, EOA]`, code_start = len(P) + 2. */
export function textToImageLayout(
  prompt: ArrayLike<number>,
  uncondPrompt: ArrayLike<number>,
  grid: Grid,
  known?: { codes: Int32Array; regenerate: Uint8Array },
): TextToImageLayout {
  return {
    cond: concat(prompt, imageAnswerRegion(grid, known)),
    uncondPrefix: Int32Array.from(uncondPrompt),
    codeStart: prompt.length + 2,
    grid: { ...grid },
  };
}

/** Image-to-image rows: cond, and the prefixes of the two partial unconditionals. */
export interface ImageToImageLayout {
  cond: Int32Array;
  /** `Pu[:-1] + IMGs + Pu[-1:]`: text dropped, image(s) kept. */
  uncondTextPrefix: Int32Array;
  /** `P`: image(s) dropped, text kept. */
  uncondImagePrefix: Int32Array;
  /** len(P) + len(IMGs) + 2. */
  codeStart: number;
  grid: Grid;
}

function requireNonEmpty(name: string, ids: ArrayLike<number>): void {
  if (ids.length < 1) throw new RangeError(`${name} is empty: the image goes before its last token`);
}

/**
 * `cond = P[:-1] + IMGs + P[-1:] + [BOA, BOI] + rows(MASK) + [EOI, EOA]`. One image for edit / control /
 * subject / dense / multi-view; [content, style] for style transfer. The output grid is the caller's
 * choice (the reference: the input's grid, or the style image's for style transfer).
 */
export function imageToImageLayout(
  prompt: ArrayLike<number>,
  uncondPrompt: ArrayLike<number>,
  images: readonly ImageCodes[],
  grid: Grid,
): ImageToImageLayout {
  requireNonEmpty("prompt", prompt);
  requireNonEmpty("uncond prompt", uncondPrompt);
  if (images.length < 1) throw new RangeError("image-to-image needs at least one image");
  const imgs = concat(...images.map(imageBlock));
  const p = Array.from(prompt);
  const pu = Array.from(uncondPrompt);
  return {
    cond: concat(p.slice(0, -1), imgs, p.slice(-1), imageAnswerRegion(grid)),
    uncondTextPrefix: concat(pu.slice(0, -1), imgs, pu.slice(-1)),
    uncondImagePrefix: Int32Array.from(p),
    codeStart: p.length + imgs.length + 2,
    grid: { ...grid },
  };
}

/** A CFG branch row for the current state: `prefix + x[codeStart-2:]` (the live answer region). */
export function uncondRow(prefix: Int32Array, x: Int32Array, codeStart: number): Int32Array {
  const tail = x.subarray(codeStart - 2);
  const out = new Int32Array(prefix.length + tail.length);
  out.set(prefix, 0);
  out.set(tail, prefix.length);
  return out;
}

/** Where row position `pos` of the cond row sits in a branch built by uncondRow. */
export function uncondOffset(prefixLength: number, codeStart: number): number {
  return prefixLength - (codeStart - 2);
}

export interface UnderstandingLayout {
  row: Int32Array;
  /** Index of the first answer MASK: len(P) + len(IMGs) + 1. */
  codeStart: number;
  genLength: number;
}

/**
 * `x = P[:-1] + IMGs + P[-1:] + [BOA] + [MASK]*genLength + [EOA]`, each image ONCE as [BOI] rows [EOI]
 * (the reference script adds newlines/BOI/EOI twice, issue #3; this is the trained layout).
 */
export function understandingLayout(prompt: ArrayLike<number>, images: readonly ImageCodes[], genLength: number): UnderstandingLayout {
  requireNonEmpty("prompt", prompt);
  if (!Number.isInteger(genLength) || genLength < 1) throw new RangeError(`genLength ${genLength}`);
  const imgs = concat(...images.map(imageBlock));
  const p = Array.from(prompt);
  const answer = new Int32Array(genLength + 2).fill(MASK);
  answer[0] = BOA;
  answer[genLength + 1] = EOA;
  return {
    row: concat(p.slice(0, -1), imgs, p.slice(-1), answer),
    codeStart: p.length + imgs.length + 1,
    genLength,
  };
}

/** code_start of each task from its part lengths (docs/model.md §10). */
export const codeStart = {
  textToImage: (promptLength: number) => promptLength + 2,
  imageToImage: (promptLength: number, imagesLength: number) => promptLength + imagesLength + 2,
  understanding: (promptLength: number, imagesLength: number) => promptLength + imagesLength + 1,
} as const;

/** Row positions of the h*w image cells of an answer region starting at codeStart (newlines skipped). */
export function imageCellPositions(codeStart: number, grid: Grid): Int32Array {
  const { h, w } = grid;
  const out = new Int32Array(h * w);
  let i = 0;
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out[i++] = codeStart + r * (w + 1) + c;
  return out;
}

/**
 * Codebook indices (0..8191) of a finished generation: `x[codeStart : codeStart + h(w+1)]` without the
 * newlines, minus IMAGE_OFFSET. Throws if the frame is wrong or a cell is not an image code (e.g. MASK).
 */
export function extractImageCodes(row: Int32Array, codeStart: number, grid: Grid): Int32Array {
  const { h, w } = grid;
  const end = codeStart + h * (w + 1);
  if (row[codeStart - 1] !== BOI || row[end] !== EOI) throw new RangeError("extractImageCodes: no [BOI] ... [EOI] frame at codeStart");
  const out = new Int32Array(h * w);
  let i = 0;
  for (let r = 0; r < h; r++) {
    const base = codeStart + r * (w + 1);
    if (row[base + w] !== NEWLINE) throw new RangeError(`extractImageCodes: row ${r} does not end in NEWLINE`);
    for (let c = 0; c < w; c++) {
      const v = row[base + c] - IMAGE_OFFSET;
      if (v < 0 || v >= CODEBOOK_SIZE) throw new RangeError(`extractImageCodes: cell (${r},${c}) holds ${row[base + c]}, not an image code`);
      out[i++] = v;
    }
  }
  return out;
}

export function concat(...parts: ArrayLike<number>[]): Int32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    if (p instanceof Int32Array) out.set(p, o);
    else for (let i = 0; i < p.length; i++) out[o + i] = p[i];
    o += p.length;
  }
  return out;
}
