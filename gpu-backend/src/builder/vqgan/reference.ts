// Plain TypeScript forward pass of the VQ-GAN (float64 typed-array maths), for tiny configs: the ground
// truth the ONNX graphs are tested against. Same operations, in the same order, as diffusers' VQModel
// (encoder -> quant_conv -> argmin over the codebook; codebook lookup -> post_quant_conv -> decoder).
//
// Quantiser exactness: the reference computes the exact squared distance sum_d (z_d - e_kd)^2 in float64
// and takes the first index of the minimum (ties go to the lowest index, like torch.argmin and ONNX
// ArgMin). It also returns, per position, the gap between the best and the second-best distance, so a
// test can require exact agreement wherever the gap is larger than the fp32 error of the graph's latents
// and only accept a near-tied alternative where it is not.

import { vqLayout, type ResnetSpec, type VqConfig } from "./config";
import type { VqWeights } from "./weights";

/** An NCHW tensor. */
export interface Tensor4 {
  data: Float64Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

function w(weights: VqWeights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t.data;
}

export function conv2dRef(
  x: Tensor4,
  weight: Float32Array,
  bias: Float32Array,
  outC: number,
  k: number,
  stride: number,
  pads: [number, number, number, number],
): Tensor4 {
  const [pt, pl, pb, pr] = pads;
  const oh = Math.floor((x.h + pt + pb - k) / stride) + 1;
  const ow = Math.floor((x.w + pl + pr - k) / stride) + 1;
  const out = new Float64Array(x.n * outC * oh * ow);
  const plane = oh * ow;
  const xd = x.data;
  const inW = x.w;
  for (let n = 0; n < x.n; n++) {
    for (let o = 0; o < outC; o++) {
      const ob = (n * outC + o) * plane;
      out.fill(bias[o], ob, ob + plane);
      for (let i = 0; i < x.c; i++) {
        const xb = (n * x.c + i) * x.h * inW;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const wv = weight[((o * x.c + i) * k + ky) * k + kx];
            // output columns whose input column ox*stride + kx - pl lies inside [0, inW)
            const ox0 = Math.max(0, Math.ceil((pl - kx) / stride));
            const ox1 = Math.min(ow, Math.floor((inW - 1 - kx + pl) / stride) + 1);
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * stride + ky - pt;
              if (iy < 0 || iy >= x.h) continue;
              const rowIn = xb + iy * inW + kx - pl;
              const rowOut = ob + oy * ow;
              for (let ox = ox0; ox < ox1; ox++) out[rowOut + ox] += wv * xd[rowIn + ox * stride];
            }
          }
        }
      }
    }
  }
  return { data: out, n: x.n, c: outC, h: oh, w: ow };
}

export function groupNormRef(x: Tensor4, gamma: Float32Array, beta: Float32Array, groups: number, eps: number): Tensor4 {
  const out = new Float64Array(x.data.length);
  const cpg = x.c / groups;
  const plane = x.h * x.w;
  const count = cpg * plane;
  for (let n = 0; n < x.n; n++) {
    for (let gi = 0; gi < groups; gi++) {
      const base = (n * x.c + gi * cpg) * plane;
      let mean = 0;
      for (let i = 0; i < count; i++) mean += x.data[base + i];
      mean /= count;
      let v = 0;
      for (let i = 0; i < count; i++) {
        const d = x.data[base + i] - mean;
        v += d * d;
      }
      const inv = 1 / Math.sqrt(v / count + eps);
      for (let c = 0; c < cpg; c++) {
        const ch = gi * cpg + c;
        const cb = base + c * plane;
        for (let i = 0; i < plane; i++) out[cb + i] = (x.data[cb + i] - mean) * inv * gamma[ch] + beta[ch];
      }
    }
  }
  return { ...x, data: out };
}

function siluRef(x: Tensor4): Tensor4 {
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i] / (1 + Math.exp(-x.data[i]));
  return { ...x, data: out };
}

function add(a: Tensor4, b: Tensor4): Tensor4 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] + b.data[i];
  return { ...a, data: out };
}

function conv(x: Tensor4, weights: VqWeights, prefix: string, k = 3, stride = 1, pads?: [number, number, number, number]): Tensor4 {
  const wt = weights.get(`${prefix}.weight`)!;
  const half = (k - 1) >> 1;
  return conv2dRef(x, wt.data, w(weights, `${prefix}.bias`), wt.shape[0], k, stride, pads ?? [half, half, half, half]);
}

function norm(x: Tensor4, weights: VqWeights, prefix: string, cfg: VqConfig): Tensor4 {
  return groupNormRef(x, w(weights, `${prefix}.weight`), w(weights, `${prefix}.bias`), cfg.normNumGroups, cfg.normEps);
}

function resnet(x: Tensor4, weights: VqWeights, r: ResnetSpec, cfg: VqConfig): Tensor4 {
  let h = siluRef(norm(x, weights, `${r.prefix}.norm1`, cfg));
  h = conv(h, weights, `${r.prefix}.conv1`);
  h = siluRef(norm(h, weights, `${r.prefix}.norm2`, cfg));
  h = conv(h, weights, `${r.prefix}.conv2`);
  const sc = r.inC !== r.outC ? conv(x, weights, `${r.prefix}.conv_shortcut`, 1) : x;
  return add(sc, h);
}

function upsampleNearest2x(x: Tensor4): Tensor4 {
  const oh = x.h * 2;
  const ow = x.w * 2;
  const out = new Float64Array(x.n * x.c * oh * ow);
  for (let nc = 0; nc < x.n * x.c; nc++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) out[(nc * oh + y) * ow + xx] = x.data[(nc * x.h + (y >> 1)) * x.w + (xx >> 1)];
  return { data: out, n: x.n, c: x.c, h: oh, w: ow };
}

export interface VqEncodeResult {
  /** Codes [B, h, w], row-major. */
  codes: Int32Array;
  /** Latents after quant_conv, [B, D, h, w]. */
  latents: Tensor4;
  /** Per position: second-best minus best exact squared distance (>= 0; 0 means an exact tie). */
  margins: Float64Array;
  h: number;
  w: number;
}

/** Encodes uint8 pixels [B, 3, H, W] (H, W multiples of the downsampling factor). */
export function vqEncodeReference(cfg: VqConfig, weights: VqWeights, pixels: Uint8Array, B: number, H: number, W: number): VqEncodeResult {
  if (pixels.length !== B * cfg.inChannels * H * W) throw new Error("reference encode: pixel count does not match [B,3,H,W]");
  const L = vqLayout(cfg);
  const data = new Float64Array(pixels.length);
  for (let i = 0; i < data.length; i++) data[i] = pixels[i] / 255;
  let x: Tensor4 = { data, n: B, c: cfg.inChannels, h: H, w: W };
  x = conv(x, weights, L.encoder.convIn.prefix);
  for (const block of L.encoder.down) {
    for (const r of block.resnets) x = resnet(x, weights, r, cfg);
    if (block.downsample) x = conv(x, weights, block.downsample.prefix, 3, 2, [0, 0, 1, 1]);
  }
  for (const r of L.encoder.mid) x = resnet(x, weights, r, cfg);
  x = siluRef(norm(x, weights, L.encoder.normOut.prefix, cfg));
  x = conv(x, weights, L.encoder.convOut.prefix);
  const z = conv(x, weights, L.quantConv.prefix, 1);
  const q = nearestCodes(z, w(weights, L.codebook.name), cfg.numVqEmbeddings, cfg.vqEmbedDim);
  return { codes: q.codes, margins: q.margins, latents: z, h: z.h, w: z.w };
}

/** Exact argmin of ||z - e_k||^2 per position of z [B, D, h, w]; ties go to the lowest k. */
export function nearestCodes(z: Tensor4, codebook: Float32Array, K: number, D: number): { codes: Int32Array; margins: Float64Array } {
  const plane = z.h * z.w;
  const codes = new Int32Array(z.n * plane);
  const margins = new Float64Array(z.n * plane);
  const v = new Float64Array(D);
  for (let n = 0; n < z.n; n++) {
    for (let pos = 0; pos < plane; pos++) {
      for (let d = 0; d < D; d++) v[d] = z.data[(n * D + d) * plane + pos];
      let best = Infinity;
      let second = Infinity;
      let arg = 0;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let d = 0; d < D; d++) {
          const diff = v[d] - codebook[k * D + d];
          s += diff * diff;
        }
        if (s < best) {
          second = best;
          best = s;
          arg = k;
        } else if (s < second) second = s;
      }
      codes[n * plane + pos] = arg;
      margins[n * plane + pos] = second - best;
    }
  }
  return { codes, margins };
}

/** numpy/ONNX rounding: to nearest, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface VqDecodeResult {
  /** round(clip(x, 0, 1) * 255) as uint8, [B, 3, H, W]. */
  pixels: Uint8Array;
  /** The decoder output before clip, [B, 3, H, W]. */
  decoded: Tensor4;
}

/** Decodes codes [B, h, w] (values 0..K-1). */
export function vqDecodeReference(cfg: VqConfig, weights: VqWeights, codes: ArrayLike<number | bigint>, B: number, h: number, wd: number): VqDecodeResult {
  const L = vqLayout(cfg);
  const D = cfg.vqEmbedDim;
  const cb = w(weights, L.codebook.name);
  const plane = h * wd;
  const q = new Float64Array(B * D * plane);
  for (let n = 0; n < B; n++)
    for (let pos = 0; pos < plane; pos++) {
      const k = Number(codes[n * plane + pos]);
      if (!(k >= 0 && k < cfg.numVqEmbeddings)) throw new Error(`reference decode: code ${k} out of range`);
      for (let d = 0; d < D; d++) q[(n * D + d) * plane + pos] = cb[k * D + d];
    }
  let x: Tensor4 = { data: q, n: B, c: D, h, w: wd };
  x = conv(x, weights, L.postQuantConv.prefix, 1);
  x = conv(x, weights, L.decoder.convIn.prefix);
  for (const r of L.decoder.mid) x = resnet(x, weights, r, cfg);
  for (const block of L.decoder.up) {
    for (const r of block.resnets) x = resnet(x, weights, r, cfg);
    if (block.upsample) x = conv(upsampleNearest2x(x), weights, block.upsample.prefix);
  }
  x = siluRef(norm(x, weights, L.decoder.normOut.prefix, cfg));
  x = conv(x, weights, L.decoder.convOut.prefix);
  const pixels = new Uint8Array(x.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = roundHalfEven(Math.min(1, Math.max(0, x.data[i])) * 255);
  return { pixels, decoded: x };
}
