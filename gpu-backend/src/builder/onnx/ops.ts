// Transformer building blocks on top of GraphBuilder (opset 17): casts, RMSNorm, linear layers over
// [out, in] weights, NeoX rotate-half RoPE from precomputed tables, bidirectional attention with a key
// padding mask, the gated SiLU MLP, row gathers and scatters, guidance combination and inverse-CDF sampling.
//
// Everything is written for both onnxruntime and the TensorRT ONNX parser: no data-dependent shapes
// (only shapes derived from graph inputs), no Range/NonZero/If/Loop, CumSum with a constant axis, Gemm
// with transB=1 so [out, in] checkpoint weights are used in place without a transpose copy. Norms,
// softmax, RoPE and sampling run in fp32; matmuls run in `compute` precision (bf16 for production).

import { ONNX_DTYPES, type GraphBuilder, type OnnxDType } from "./graph-builder";

/** Precision of matmul inputs (accumulation is the backend's; outputs are cast back to fp32). */
export type ComputeDType = "FLOAT" | "BFLOAT16";

const caches = new WeakMap<GraphBuilder, Map<string, string>>();

/** A per-graph memo, so shared constants and shape values are created once. */
export function cached(g: GraphBuilder, key: string, make: () => string): string {
  let m = caches.get(g);
  if (!m) caches.set(g, (m = new Map()));
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = make()));
  return v;
}

/** fp32 scalar constant (0-D). */
export function f32(g: GraphBuilder, v: number): string {
  return cached(g, `f32:${Object.is(v, -0) ? "-0" : v}`, () => g.scalarFloat(v));
}

/** int64 1-D constant. */
export function i64(g: GraphBuilder, values: readonly number[]): string {
  return cached(g, `i64:${values.join(",")}`, () => g.constInt64(values));
}

/** int64 0-D constant. */
export function i64Scalar(g: GraphBuilder, v: number): string {
  return cached(g, `i64s:${v}`, () => g.scalarInt64(v));
}

export function cast(g: GraphBuilder, x: string, to: OnnxDType): string {
  return g.op("Cast", [x], { to: ONNX_DTYPES[to] });
}

/** `x` as `to`, skipping the Cast when it already is. */
export function castIf(g: GraphBuilder, x: string, from: OnnxDType, to: OnnxDType): string {
  return from === to ? x : cast(g, x, to);
}

/** Dimension `i` of `x` as a 1-element int64 tensor (Shape + Slice; TensorRT treats it as a shape tensor). */
export function dim(g: GraphBuilder, x: string, i: number): string {
  return cached(g, `dim:${x}:${i}`, () => {
    const shape = cached(g, `shape:${x}`, () => g.op("Shape", [x]));
    return g.op("Slice", [shape, i64(g, [i]), i64(g, [i + 1]), i64(g, [0])]);
  });
}

/** A 1-D int64 shape from pieces: numbers become constants, strings are 1-element int64 tensors. */
export function shapeOf(g: GraphBuilder, parts: Array<number | string>): string {
  if (parts.every((p) => typeof p === "number")) return i64(g, parts as number[]);
  const key = `shapeOf:${parts.join("|")}`;
  return cached(g, key, () => g.op("Concat", parts.map((p) => (typeof p === "number" ? i64(g, [p]) : p)), { axis: 0 }));
}

export function reshape(g: GraphBuilder, x: string, parts: Array<number | string>): string {
  return g.op("Reshape", [x, shapeOf(g, parts)]);
}

export function unsqueeze(g: GraphBuilder, x: string, axes: number[]): string {
  return g.op("Unsqueeze", [x, i64(g, axes)]);
}

export function squeeze(g: GraphBuilder, x: string, axes: number[]): string {
  return g.op("Squeeze", [x, i64(g, axes)]);
}

/**
 * RMSNorm over the last axis in fp32: `x / sqrt(mean(x^2) + eps) * w`. `x` must be fp32; the weight is
 * cast to fp32 when stored in another dtype.
 */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, weightDtype: OnnxDType, eps: number): string {
  const ms = g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: [-1], keepdims: 1 });
  const y = g.op("Div", [x, g.op("Sqrt", [g.op("Add", [ms, f32(g, eps)])])]);
  return g.op("Mul", [y, castIf(g, weight, weightDtype, "FLOAT")]);
}

/**
 * `x @ W^T` for a 2-D fp32 `x` [T, in] and an nn.Linear weight [out, in] (Gemm transB=1: the checkpoint
 * bytes are used as stored). Inputs are cast to `compute`, the result back to fp32.
 */
export function linear(g: GraphBuilder, x: string, weight: string, weightDtype: OnnxDType, compute: ComputeDType): string {
  const w = castIf(g, weight, weightDtype, compute);
  const y = g.op("Gemm", [castIf(g, x, "FLOAT", compute), w], { transB: 1 });
  return castIf(g, y, compute, "FLOAT");
}

/** MatMul in `compute` precision of two fp32 tensors, fp32 result. */
export function matmul(g: GraphBuilder, a: string, b: string, compute: ComputeDType): string {
  return castIf(g, g.op("MatMul", [castIf(g, a, "FLOAT", compute), castIf(g, b, "FLOAT", compute)]), compute, "FLOAT");
}

export function silu(g: GraphBuilder, x: string): string {
  return g.op("Mul", [x, g.op("Sigmoid", [x])]);
}

/**
 * The RoPE tables, computed as torch does in fp32 (`inv_freq = 1 / theta^(arange(0, hd, 2)/hd)`,
 * `freqs = pos * inv_freq` rounded to fp32, then `cat(freqs, freqs)`), with cos/sin correctly rounded.
 * `sinSigned` is `cat(-sin, sin)`, so that `x*cos + rotate_half(x)*sin == x*cos + swap_halves(x)*sinSigned`.
 * Shared by the graph (as initializers) and the TypeScript reference.
 */
export function ropeTables(headDim: number, theta: number, positions: number): { cos: Float32Array; sinSigned: Float32Array; invFreq: Float32Array } {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let j = 0; j < half; j++) invFreq[j] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / headDim))));
  const cos = new Float32Array(positions * headDim);
  const sinSigned = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < half; j++) {
      const f = Math.fround(p * invFreq[j]);
      const c = Math.cos(f);
      const s = Math.sin(f);
      const o = p * headDim;
      cos[o + j] = c;
      cos[o + half + j] = c;
      sinSigned[o + j] = -s;
      sinSigned[o + half + j] = s;
    }
  }
  return { cos, sinSigned, invFreq };
}

/** Rows 0..L-1 of a [P, ...] table, with L a 1-element int64 tensor. */
export function sliceRows(g: GraphBuilder, table: string, L: string): string {
  return g.op("Slice", [table, i64(g, [0]), L, i64(g, [0])]);
}

/**
 * NeoX rotate-half RoPE on `x` [..., L, n, hd] with `cos`, `sinSigned` broadcastable to it (e.g. [L, 1, hd]).
 */
export function applyRope(g: GraphBuilder, x: string, cos: string, sinSigned: string, headDim: number): string {
  const half = headDim / 2;
  const x1 = g.op("Slice", [x, i64(g, [0]), i64(g, [half]), i64(g, [-1])]);
  const x2 = g.op("Slice", [x, i64(g, [half]), i64(g, [headDim]), i64(g, [-1])]);
  const swapped = g.op("Concat", [x2, x1], { axis: -1 });
  return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [swapped, sinSigned])]);
}

/** Large negative additive bias for masked keys: exp() of it underflows to exactly 0 in fp32. */
export const MASKED_KEY_BIAS = -1e9;

/**
 * Additive key padding bias [R, 1, 1, L] (fp32): 0 where key position < seq_lens[r], MASKED_KEY_BIAS
 * elsewhere. `positions` is an fp32 [L] tensor 0..L-1 (sliced from a table, so no Range op).
 */
export function keyPaddingBias(g: GraphBuilder, seqLens: string, positions: string, R: string, L: string): string {
  const lens = unsqueeze(g, cast(g, seqLens, "FLOAT"), [1]); // [R,1]
  const valid = g.op("Less", [unsqueeze(g, positions, [0]), lens]); // [R,L]
  const bias = g.op("Where", [valid, f32(g, 0), f32(g, MASKED_KEY_BIAS)]);
  return reshape(g, bias, [R, 1, 1, L]);
}

export interface AttentionDims {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** 1-element int64 tensors with the batch rows and the row length. */
  R: string;
  L: string;
  /**
   * "fp32" (default): scores are cast to fp32 for the mask and the softmax. "compute": MatMul -> Add ->
   * Softmax -> MatMul all in the compute dtype, the plain pattern TensorRT fuses into its attention
   * kernels (which keep softmax statistics in fp32 internally, as PyTorch's flash SDPA does).
   */
  softmax?: "fp32" | "compute";
}

/** A RoPE table [..., hd] as [..., 1, hd], so it broadcasts over the heads (memoised per table). */
export function ropeOverHeads(g: GraphBuilder, table: string): string {
  return cached(g, `heads:${table}`, () => unsqueeze(g, table, [-2]));
}

/**
 * Bidirectional multi-head attention over rows of length L. `q` [R*L, nHeads*hd], `k`/`v` [R*L, nKv*hd]
 * (fp32, flattened rows), `cos`/`sinSigned` [L, hd], `bias` [R,1,1,L] (key padding). Returns
 * [R*L, nHeads*hd] fp32. RoPE at positions 0..L-1 on queries and keys, then `attendRotated`.
 */
export function attention(
  g: GraphBuilder,
  q: string,
  k: string,
  v: string,
  cos: string,
  sinSigned: string,
  bias: string,
  d: AttentionDims,
  compute: ComputeDType,
): string {
  const { nHeads, nKvHeads, headDim: hd, R, L } = d;
  const cos3 = ropeOverHeads(g, cos);
  const sin3 = ropeOverHeads(g, sinSigned);
  const q4 = applyRope(g, reshape(g, q, [R, L, nHeads, hd]), cos3, sin3, hd);
  const k4 = applyRope(g, reshape(g, k, [R, L, nKvHeads, hd]), cos3, sin3, hd);
  return attendRotated(g, q4, k4, reshape(g, v, [R, L, nKvHeads, hd]), bias, { ...d, queries: L, keys: L }, compute);
}

export interface RotatedAttentionDims extends AttentionDims {
  /** 1-element int64 tensors: query positions and key positions per row. */
  queries: string;
  keys: string;
}

/**
 * Attention of queries already rotated by RoPE, `q4` [R, Lq, nHeads, hd], over rotated keys `k4` and
 * values `v4` [R, Lk, nKv, hd] (fp32), with the key padding `bias` [R,1,1,Lk]; scale `1/sqrt(hd)`.
 * Returns [R*Lq, nHeads*hd] fp32. Scores and softmax are fp32 unless `softmax: "compute"`; the two matmuls
 * run in `compute`. Grouped-query attention (nKv < nHeads) shares kv head h // (nHeads/nKv), as
 * `repeat_interleave` does, through broadcasting MatMul (no copies).
 */
export function attendRotated(
  g: GraphBuilder,
  q4: string,
  k4: string,
  v4: string,
  bias: string,
  d: RotatedAttentionDims,
  compute: ComputeDType,
): string {
  const { nHeads, nKvHeads, headDim: hd, R, queries: Lq, keys: Lk } = d;
  const rep = nHeads / nKvHeads;
  const qs = g.op("Mul", [q4, f32(g, 1 / Math.sqrt(hd))]);
  if (d.softmax === "compute" && compute !== "FLOAT") {
    if (rep !== 1) throw new Error("attention: softmax in the compute dtype is implemented for MHA only");
    const qT = cast(g, g.op("Transpose", [qs], { perm: [0, 2, 1, 3] }), compute);
    const kT = cast(g, g.op("Transpose", [k4], { perm: [0, 2, 3, 1] }), compute);
    const vT = cast(g, g.op("Transpose", [v4], { perm: [0, 2, 1, 3] }), compute);
    const biasC = cached(g, `biasC:${bias}`, () => cast(g, bias, compute));
    const p = g.op("Softmax", [g.op("Add", [g.op("MatMul", [qT, kT]), biasC])], { axis: -1 });
    const out = g.op("Transpose", [cast(g, g.op("MatMul", [p, vT]), "FLOAT")], { perm: [0, 2, 1, 3] });
    return reshape(g, out, [-1, nHeads * hd]);
  }
  let out: string;
  if (rep === 1) {
    const qT = g.op("Transpose", [qs], { perm: [0, 2, 1, 3] }); // [R,H,Lq,hd]
    const kT = g.op("Transpose", [k4], { perm: [0, 2, 3, 1] }); // [R,H,hd,Lk]
    const vT = g.op("Transpose", [v4], { perm: [0, 2, 1, 3] }); // [R,H,Lk,hd]
    const scores = g.op("Add", [matmul(g, qT, kT, compute), bias]); // [R,H,Lq,Lk]
    const p = g.op("Softmax", [scores], { axis: -1 });
    out = g.op("Transpose", [matmul(g, p, vT, compute)], { perm: [0, 2, 1, 3] }); // [R,Lq,H,hd]
  } else {
    const qT = g.op("Transpose", [reshape(g, qs, [R, Lq, nKvHeads, rep, hd])], { perm: [0, 2, 3, 1, 4] }); // [R,kv,rep,Lq,hd]
    const kT = g.op("Transpose", [reshape(g, k4, [R, Lk, nKvHeads, 1, hd])], { perm: [0, 2, 3, 4, 1] }); // [R,kv,1,hd,Lk]
    const vT = g.op("Transpose", [reshape(g, v4, [R, Lk, nKvHeads, 1, hd])], { perm: [0, 2, 3, 1, 4] }); // [R,kv,1,Lk,hd]
    const bias5 = cached(g, `bias5:${bias}`, () => unsqueeze(g, bias, [1])); // [R,1,1,1,Lk]
    const scores = g.op("Add", [matmul(g, qT, kT, compute), bias5]); // [R,kv,rep,Lq,Lk]
    const p = g.op("Softmax", [scores], { axis: -1 });
    out = g.op("Transpose", [matmul(g, p, vT, compute)], { perm: [0, 3, 1, 2, 4] }); // [R,Lq,kv,rep,hd]
  }
  return reshape(g, out, [-1, nHeads * hd]);
}

/** Gated SiLU MLP `down(silu(gate(x)) * up(x))` on fp32 `x` [T, d]. */
export function gatedMlp(
  g: GraphBuilder,
  x: string,
  gate: string,
  up: string,
  down: string,
  weightDtype: OnnxDType,
  compute: ComputeDType,
): string {
  const a = g.op("Mul", [silu(g, linear(g, x, gate, weightDtype, compute)), linear(g, x, up, weightDtype, compute)]);
  return linear(g, a, down, weightDtype, compute);
}

/** Rows of a 2-D [T, d] tensor at flat int64 indices of any shape: returns [...indices.shape, d]. */
export function gatherRows(g: GraphBuilder, rows2d: string, indices: string): string {
  return g.op("Gather", [rows2d, indices], { axis: 0 });
}

/**
 * A 2-D [T, d] tensor with the rows at flat int64 `indices` [...] replaced by `updates` [..., d]
 * (ScatterND). Repeated indices must carry equal updates: ONNX leaves the order of their writes open.
 */
export function scatterRows(g: GraphBuilder, rows2d: string, indices: string, updates: string): string {
  return g.op("ScatterND", [rows2d, unsqueeze(g, indices, [-1]), updates]);
}

/**
 * Guidance: `combined[g,m,:] = sum_k weights[g,k] * logits[g,k,m,:]` for logits [G,K,M,V] (fp32).
 */
export function combineBranches(g: GraphBuilder, logits: string, weights: string): string {
  const w4 = unsqueeze(g, weights, [2, 3]); // [G,K,1,1]
  return g.op("ReduceSum", [g.op("Mul", [logits, w4]), i64(g, [1])], { keepdims: 0 }); // [G,M,V]
}

export interface SampleOutputs {
  /** int64 [G,M]: index into the last axis. */
  tokens: string;
  /** fp32 [G,M]: softmax(combined)[token] (not tempered). */
  confidence: string;
}

/**
 * Inverse-CDF sampling from `softmax(combined / T)` at one uniform per slot, for combined [G,M,V] fp32,
 * uniforms [G,M] and temperature [G]. The sampled index is the count of cumulative probabilities below u,
 * clamped to V-1; rows with T == 0 take ArgMax(combined) (first maximum) instead, with no division by 0.
 * Confidence is softmax(combined) at the chosen index.
 */
export function sampleInverseCdf(g: GraphBuilder, combined: string, uniforms: string, temperature: string, vocab: number): SampleOutputs {
  const t3 = unsqueeze(g, temperature, [1, 2]); // [G,1,1]
  const isZero = g.op("Equal", [t3, f32(g, 0)]);
  const tSafe = g.op("Where", [isZero, f32(g, 1), t3]);
  const p = g.op("Softmax", [g.op("Div", [combined, tSafe])], { axis: -1 });
  const cdf = g.op("CumSum", [p, i64Scalar(g, 2)]);
  const below = cast(g, g.op("Less", [cdf, unsqueeze(g, uniforms, [2])]), "FLOAT");
  const count = g.op("ReduceSum", [below, i64(g, [2])], { keepdims: 0 }); // exact: integers < 2^24
  const sampled = cast(g, g.op("Min", [count, f32(g, vocab - 1)]), "INT64");
  const argmax = g.op("ArgMax", [combined], { axis: 2, keepdims: 0, select_last_index: 0 });
  const tokens = g.op("Where", [squeeze(g, isZero, [2]), argmax, sampled]); // [G,M]
  const probs = g.op("Softmax", [combined], { axis: -1 });
  const confidence = squeeze(g, g.op("GatherElements", [probs, unsqueeze(g, tokens, [2])], { axis: 2 }), [2]);
  return { tokens, confidence };
}
