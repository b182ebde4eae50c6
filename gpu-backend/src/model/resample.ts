// Pillow's resize (libImaging/Resample.c) for 8-bit images, in TypeScript, because the reference crops and
// scales input images with PIL (BOX halvings, BICUBIC to the crop scale, LANCZOS to a multiple of 16) and
// the VQ codes (hence the model's view of the image) depend on the exact pixels. Same filters, same
// support, same 22-bit fixed-point coefficients and rounding, horizontal pass first: byte-identical to
// Pillow for RGB. Images are planar (CHW) uint8.

export type ResampleFilter = "box" | "bicubic" | "lanczos" | "bilinear";

interface Filter {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [xmin, count] per output pixel
  kk: Int32Array; // fixed-point weights, ksize per output pixel
}

/** precompute_coeffs + normalize_coeffs_8bpc for a full-range (box = [0, inSize]) resize. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? w[x] / ww : w[x]) : 0;
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** A planar uint8 image: `data[c * height * width + y * width + x]`. */
export interface PlanarImage {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

function resizeHorizontal(src: PlanarImage, outW: number, filter: Filter): PlanarImage {
  const { width, height, channels, data } = src;
  const { ksize, bounds, kk } = coefficients(width, outW, filter);
  const out = new Uint8Array(channels * height * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      const row = c * height * width + y * width;
      const orow = c * height * outW + y * outW;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
        const k = xx * ksize;
        let ss = HALF;
        for (let x = 0; x < xmax; x++) ss += data[row + xmin + x] * kk[k + x];
        out[orow + xx] = clip8(ss);
      }
    }
  }
  return { width: outW, height, channels, data: out };
}

function resizeVertical(src: PlanarImage, outH: number, filter: Filter): PlanarImage {
  const { width, height, channels, data } = src;
  const { ksize, bounds, kk } = coefficients(height, outH, filter);
  const out = new Uint8Array(channels * outH * width);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    const oplane = c * outH * width;
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
      const k = yy * ksize;
      for (let x = 0; x < width; x++) {
        let ss = HALF;
        for (let y = 0; y < ymax; y++) ss += data[plane + (ymin + y) * width + x] * kk[k + y];
        out[oplane + yy * width + x] = clip8(ss);
      }
    }
  }
  return { width, height: outH, channels, data: out };
}

/** PIL `Image.resize((outW, outH), resample=filter)` on a planar uint8 image. */
export function resize(img: PlanarImage, outW: number, outH: number, filter: ResampleFilter): PlanarImage {
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) throw new RangeError(`resize to ${outW}x${outH}`);
  if (outW === img.width && outH === img.height) return { ...img, data: img.data.slice() };
  const f = FILTERS[filter];
  let cur = img;
  if (outW !== cur.width) cur = resizeHorizontal(cur, outW, f);
  if (outH !== cur.height) cur = resizeVertical(cur, outH, f);
  return cur;
}

/** Crop box [left, top, left+w, top+h) of a planar image. */
export function crop(img: PlanarImage, left: number, top: number, w: number, h: number): PlanarImage {
  if (left < 0 || top < 0 || left + w > img.width || top + h > img.height) throw new RangeError("crop box outside the image");
  const out = new Uint8Array(img.channels * w * h);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < h; y++) {
      const s = c * img.height * img.width + (top + y) * img.width + left;
      out.set(img.data.subarray(s, s + w), c * h * w + y * w);
    }
  }
  return { width: w, height: h, channels: img.channels, data: out };
}
