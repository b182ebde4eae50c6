// Inpainting/outpainting masks: which VQ cells the model regenerates. The reference builds a pixel mask
// (1 = regenerate), area-averages it onto the h x w grid (F.interpolate mode="area") and regenerates a cell
// iff its average is > 0.5 (docs/model.md §4.3). We accept any mask image: with an alpha channel, the
// OpenAI convention (transparent, alpha < 128, = regenerate); without one, white (luma >= 128) = regenerate.

import type { Grid } from "./layout";
import { decodeRaw, probeImage } from "./image-codec";
import { pyRound } from "./crops";
import { InvalidArgument } from "./errors";

/** A per-pixel regenerate mask, row-major, 1 = regenerate. */
export interface PixelMask {
  width: number;
  height: number;
  regenerate: Uint8Array;
}

/** PIL's RGB -> L conversion (ITU-R 601-2 luma, 16-bit fixed point). */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** Decodes a mask image; it must have exactly the source image's size. */
export async function decodeMask(
  bytes: Uint8Array,
  opts: { field?: string; width: number; height: number; maxPixels: number },
): Promise<PixelMask> {
  const field = opts.field ?? "mask";
  const probe = await probeImage(bytes, { field, maxPixels: opts.maxPixels });
  if (probe.width !== opts.width || probe.height !== opts.height) {
    throw new InvalidArgument(field, `is ${probe.width}x${probe.height} but the image is ${opts.width}x${opts.height}; they must match`);
  }
  const { width, height, hwc } = await decodeRaw(bytes, { field, maxPixels: opts.maxPixels }, "rgba");
  const n = width * height;
  const regenerate = new Uint8Array(n);
  if (probe.hasAlpha) {
    for (let i = 0; i < n; i++) regenerate[i] = hwc[i * 4 + 3] < 128 ? 1 : 0;
  } else {
    for (let i = 0; i < n; i++) regenerate[i] = luma(hwc[i * 4], hwc[i * 4 + 1], hwc[i * 4 + 2]) >= 128 ? 1 : 0;
  }
  return { width, height, regenerate };
}

/**
 * Area-average a pixel mask onto the VQ grid; a cell regenerates iff strictly more than half its area does.
 * Cell (i, j) covers rows [floor(i H/h), ceil((i+1) H/h)) and likewise columns, as adaptive average
 * pooling does, so sizes that are not multiples of the grid work too.
 */
export function maskToGrid(mask: PixelMask, grid: Grid): Uint8Array {
  const { width: W, height: H, regenerate } = mask;
  const { h, w } = grid;
  if (regenerate.length !== W * H) throw new RangeError(`mask has ${regenerate.length} pixels for ${W}x${H}`);
  if (h < 1 || w < 1 || h > H || w > W) throw new RangeError(`grid ${h}x${w} for a ${W}x${H} mask`);
  // Integral image over rows for O(1) box sums.
  const integral = new Float64Array((H + 1) * (W + 1));
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += regenerate[y * W + x];
      integral[(y + 1) * (W + 1) + x + 1] = integral[y * (W + 1) + x + 1] + row;
    }
  }
  const out = new Uint8Array(h * w);
  for (let i = 0; i < h; i++) {
    const y0 = Math.floor((i * H) / h), y1 = Math.ceil(((i + 1) * H) / h);
    for (let j = 0; j < w; j++) {
      const x0 = Math.floor((j * W) / w), x1 = Math.ceil(((j + 1) * W) / w);
      const sum = integral[y1 * (W + 1) + x1] - integral[y0 * (W + 1) + x1] - integral[y1 * (W + 1) + x0] + integral[y0 * (W + 1) + x0];
      const area = (y1 - y0) * (x1 - x0);
      out[i * w + j] = 2 * sum > area ? 1 : 0;
    }
  }
  return out;
}

/** decodeMask + maskToGrid. */
export async function maskGridFromImage(
  bytes: Uint8Array,
  opts: { field?: string; width: number; height: number; maxPixels: number; grid: Grid },
): Promise<Uint8Array> {
  return maskToGrid(await decodeMask(bytes, opts), opts.grid);
}

/**
 * The reference scripts' centred rectangle (encode_img_with_paint): mh = round(H hRatio), mw = round(W wRatio),
 * top = (H - mh) // 2, left = (W - mw) // 2; "inpaint" regenerates inside, "outpaint" outside.
 */
export function rectangleMask(width: number, height: number, hRatio: number, wRatio: number, mode: "inpaint" | "outpaint"): PixelMask {
  for (const [f, v] of [["mask_h_ratio", hRatio], ["mask_w_ratio", wRatio]] as const) {
    if (!Number.isFinite(v) || v < 0 || v > 1) throw new InvalidArgument(f, `must be in [0, 1], got ${v}`);
  }
  const mh = pyRound(height * hRatio), mw = pyRound(width * wRatio);
  const top = Math.floor((height - mh) / 2), left = Math.floor((width - mw) / 2);
  const regenerate = new Uint8Array(width * height);
  const inside = mode === "inpaint" ? 1 : 0;
  regenerate.fill(1 - inside);
  for (let y = top; y < top + mh; y++) regenerate.fill(inside, y * width + left, y * width + left + mw);
  return { width, height, regenerate };
}

/** Number of cells to regenerate. */
export function countRegenerate(cells: Uint8Array): number {
  let n = 0;
  for (const c of cells) n += c ? 1 : 0;
  return n;
}
