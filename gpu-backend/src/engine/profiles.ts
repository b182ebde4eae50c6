// TensorRT optimization profiles for the three engines, and the device memory they need (estimates).
//
// Transformer: one profile per sequence-length bucket. All profiles start at L = 1 (they overlap), so any
// call that fits some profile's maximum runs; Triton's TensorRT backend picks, per call, the profile
// closest to the call's shapes among those listed in the instance group (all of them, see
// model-config.ts). Each bucket bounds the rows R so that R * L stays near a 20 K token budget (an 8B
// forward pass already saturates an H100 at a few thousand tokens; activation memory scales with R * L).
// The orchestrator's step batcher must keep a call within one bucket's limits (exported below): rows <=
// maxRows, L <= maxLen (12288 at most), image requests <= maxRows / 2, text requests <= 4.
//
//   bucket   L range     opt L   max rows  opt rows  typical traffic
//   short    1..1280     1280    16        4         understanding, 512x512 text-to-image (1060 + prompt)
//   medium   1..2560     2560    8         4         768x768 (2356 + prompt), 512x512 image-to-image
//   large    1..5120     4608    4         2         1024x1024 text-to-image (4164 + prompt), 2 CFG rows
//   xl       1..12288    8192    3         2         768x1536, 1024x2048, 3-branch image-to-image at 1024
//
// VQ engines: a single profile each, so every batch Triton's dynamic batcher forms (up to max_batch_size
// at any resolution in range) fits it. The resolution range is per side (TensorRT cannot bound an area),
// so its maximum decides the activation memory, allocated once (STATIC) at the profile maximum.

import { cachedTransformerStates, TRANSFORMER_CACHED_INPUTS, TRANSFORMER_CACHED_STATE, TRANSFORMER_INPUTS, VQ_DECODER_INPUTS, VQ_ENCODER_INPUTS } from "./contract";

export interface ShapeRange {
  min: number[];
  opt: number[];
  max: number[];
}

export interface OptimizationProfile {
  name: string;
  /** Input name -> min/opt/max shape (full shape, batch dim included). */
  shapes: Record<string, ShapeRange>;
}

export interface TransformerBucket {
  name: string;
  maxLen: number;
  optLen: number;
  maxRows: number;
  optRows: number;
  /** Largest number of image target slots per request (M): the image's code count. */
  maxImageTargets: number;
  optImageTargets: number;
}

export const TRANSFORMER_BUCKETS: readonly TransformerBucket[] = [
  { name: "short", maxLen: 1280, optLen: 1280, maxRows: 16, optRows: 4, maxImageTargets: 1280, optImageTargets: 1024 },
  { name: "medium", maxLen: 2560, optLen: 2560, maxRows: 8, optRows: 4, maxImageTargets: 2560, optImageTargets: 2304 },
  { name: "large", maxLen: 5120, optLen: 4608, maxRows: 4, optRows: 2, maxImageTargets: 4608, optImageTargets: 4096 },
  { name: "xl", maxLen: 12288, optLen: 8192, maxRows: 3, optRows: 2, maxImageTargets: 8192, optImageTargets: 4608 },
];

/** Guidance branches per request: conditional + text-unconditional + image-unconditional. */
export const MAX_BRANCHES = 3;
/** Text mode (understanding) bounds: requests per call, branches (conditional + unconditional), targets per request. */
export const MAX_TEXT_REQUESTS = 4;
export const MAX_TEXT_BRANCHES = 2;
export const MAX_TEXT_TARGETS = 256;

/**
 * Image requests per call: every image request has at least 2 branch rows (conditional + unconditional),
 * so a call of R rows holds at most R/2 of them. TensorRT sizes the [G, K, M, 8192] logits for the
 * profile maximum, so this bound halves that buffer; a call of guidance-free (K = 1) requests must keep
 * G <= maxImageRequests too.
 */
export function maxImageRequests(b: TransformerBucket): number {
  return Math.max(1, Math.floor(b.maxRows / 2));
}

export function transformerProfiles(buckets: readonly TransformerBucket[] = TRANSFORMER_BUCKETS): OptimizationProfile[] {
  const I = TRANSFORMER_INPUTS;
  return buckets.map((b) => {
    const optG = Math.max(1, Math.floor(b.optRows / 2));
    const maxH = Math.min(MAX_TEXT_REQUESTS, b.maxRows);
    const maxN = Math.min(MAX_TEXT_TARGETS, b.maxLen);
    const maxG = maxImageRequests(b);
    const s: Record<string, ShapeRange> = {
      [I.inputIds.name]: { min: [1, 1], opt: [b.optRows, b.optLen], max: [b.maxRows, b.maxLen] },
      [I.seqLens.name]: { min: [1], opt: [b.optRows], max: [b.maxRows] },
      [I.imageTargets.name]: { min: [0, 1, 0], opt: [optG, 1, b.optImageTargets], max: [maxG, MAX_BRANCHES, b.maxImageTargets] },
      [I.imageBranchOffsets.name]: { min: [0, 1], opt: [optG, 2], max: [maxG, MAX_BRANCHES] },
      [I.imageWeights.name]: { min: [0, 1], opt: [optG, 2], max: [maxG, MAX_BRANCHES] },
      [I.imageUniforms.name]: { min: [0, 0], opt: [optG, b.optImageTargets], max: [maxG, b.maxImageTargets] },
      [I.imageTemperature.name]: { min: [0], opt: [optG], max: [maxG] },
      [I.textTargets.name]: { min: [0, 1, 0], opt: [1, 1, 32], max: [maxH, MAX_TEXT_BRANCHES, maxN] },
      [I.textBranchOffsets.name]: { min: [0, 1], opt: [1, 1], max: [maxH, MAX_TEXT_BRANCHES] },
      [I.textWeights.name]: { min: [0, 1], opt: [1, 1], max: [maxH, MAX_TEXT_BRANCHES] },
      [I.textUniforms.name]: { min: [0, 0], opt: [1, 32], max: [maxH, maxN] },
      [I.textTemperature.name]: { min: [0], opt: [1], max: [maxH] },
    };
    return { name: b.name, shapes: s };
  });
}

// ---- the cached transformer (ML-Cache) -------------------------------------------------------------
//
// One sequence-length range (the "large" bucket: 1024x1024 and 1536x768 text-to-image with their prompts)
// and two profiles over the same ranges that differ only in the recompute length TensorRT tunes for: a
// refresh step recomputes every position (P = L), a cached step ~10 % of them. Triton's TensorRT backend
// runs each call on the listed profile whose opt shapes are nearest (Manhattan distance over all inputs).
// The TensorRT backend sizes its state input and output bindings for the profile maximum, so maxLen and
// maxBranches set a fixed memory cost (model-repository/README.md has the table).

export interface CachedTransformerLimits {
  maxLen: number;
  optLen: number;
  /** Guidance branches per request (cond, uncond; image-to-image adds a third). */
  maxBranches: number;
  optBranches: number;
  maxImageTargets: number;
  optImageTargets: number;
  /** The recompute length the "cached" profile is tuned for: (1 - cache_ratio) * optLen at the default 0.9. */
  optCachedRecompute: number;
  /**
   * Requests whose state one instance holds at once (Triton's oldest strategy: candidate sequences). The
   * orchestrator must not run more cached requests at once: a further one would wait in Triton's backlog
   * until another ENDs.
   */
  maxSequences: number;
}

export const TRANSFORMER_CACHED_LIMITS: Readonly<CachedTransformerLimits> = Object.freeze({
  maxLen: 5120,
  optLen: 4608,
  maxBranches: MAX_BRANCHES,
  optBranches: 2,
  maxImageTargets: 4608,
  optImageTargets: 4096,
  optCachedRecompute: 464,
  maxSequences: 8,
});

/** The widths the state inputs need in a profile. */
export interface CachedStateDims {
  nLayers: number;
  /** n_kv_heads * head_dim. */
  kvWidth: number;
}

export function cachedTransformerProfiles(state: CachedStateDims, l: CachedTransformerLimits = TRANSFORMER_CACHED_LIMITS): OptimizationProfile[] {
  const I = TRANSFORMER_CACHED_INPUTS;
  const [K, optK] = [l.maxBranches, l.optBranches];
  // A refresh sends an empty recompute list (every position), a cached step one list per branch.
  const profile = (name: string, optKr: number, optP: number): OptimizationProfile => {
    const shapes: Record<string, ShapeRange> = {
      [I.inputIds.name]: { min: [1, 1], opt: [optK, l.optLen], max: [K, l.maxLen] },
      [I.seqLens.name]: { min: [1], opt: [optK], max: [K] },
      [I.recompute.name]: { min: [1, 0], opt: [optKr, optP], max: [K, l.maxLen] },
      [I.imageTargets.name]: { min: [1, 0], opt: [1, l.optImageTargets], max: [K, l.maxImageTargets] },
      [I.imageTargetShift.name]: { min: [1], opt: [optK], max: [K] },
      [I.imageWeights.name]: { min: [1], opt: [optK], max: [K] },
      [I.imageUniforms.name]: { min: [0], opt: [l.optImageTargets], max: [l.maxImageTargets] },
      [I.imageTemperature.name]: { min: [1], opt: [1], max: [1] },
      [I.quantileRanks.name]: { min: [1, 2], opt: [optK, 2], max: [K, 2] },
    };
    for (const st of cachedTransformerStates(state.nLayers)) {
      const w = st.input === TRANSFORMER_CACHED_STATE.logits.input ? DIMOO_8B_DIMS.codebook : state.kvWidth;
      shapes[st.input] = { min: [1, 1, w], opt: [optK, l.optLen, w], max: [K, l.maxLen, w] }; // [1, 1, w]: a sequence's first request
    }
    return { name, shapes };
  };
  return [profile("refresh", 1, 0), profile("cached", optK, l.optCachedRecompute)];
}

export interface CachedStateSize {
  /** Per-layer keys and values of all branches. */
  kvBytes: number;
  /** The codebook logits of all branches. */
  logitBytes: number;
  totalBytes: number;
}

/**
 * Bytes of one sequence's implicit state at K branches of length L: 2 * layers * K * L * kv elements
 * of keys and values, and K * L * 8192 logits. Production keeps both in bf16 (2 bytes).
 */
export function cachedStateSize(state: CachedStateDims, K: number, L: number, elemBytes = 2, codebook = DIMOO_8B_DIMS.codebook): CachedStateSize {
  const kvBytes = 2 * state.nLayers * K * L * state.kvWidth * elemBytes;
  const logitBytes = K * L * codebook * elemBytes;
  return { kvBytes, logitBytes, totalBytes: kvBytes + logitBytes };
}

export interface VqProfileOptions {
  /** Largest batch (Triton max_batch_size). */
  maxBatch: number;
  /** Largest image side in pixels (multiple of 16). */
  maxSide: number;
  /** Side TensorRT tunes kernels for. */
  optSide: number;
}

export const VQ_ENCODER_PROFILE_DEFAULTS: Readonly<VqProfileOptions> = Object.freeze({ maxBatch: 2, maxSide: 2048, optSide: 1024 });
// The decoder must reach the orchestrator's longest side (2048); one image at 2048² needs ~13 GB of activations.
export const VQ_DECODER_PROFILE_DEFAULTS: Readonly<VqProfileOptions> = Object.freeze({ maxBatch: 2, maxSide: 2048, optSide: 1024 });

function checkVq(o: VqProfileOptions): void {
  for (const s of [o.maxSide, o.optSide])
    if (!Number.isInteger(s) || s < 16 || s % 16 !== 0) throw new Error(`VQ profile: side ${s} is not a positive multiple of 16`);
  if (o.optSide > o.maxSide) throw new Error(`VQ profile: opt side ${o.optSide} > max side ${o.maxSide}`);
  if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1) throw new Error(`VQ profile: max batch ${o.maxBatch} < 1`);
}

export function vqEncoderProfile(o: VqProfileOptions = VQ_ENCODER_PROFILE_DEFAULTS): OptimizationProfile {
  checkVq(o);
  return {
    name: `pixels_le_${o.maxSide}`,
    shapes: { [VQ_ENCODER_INPUTS.pixels.name]: { min: [1, 3, 16, 16], opt: [1, 3, o.optSide, o.optSide], max: [o.maxBatch, 3, o.maxSide, o.maxSide] } },
  };
}

export function vqDecoderProfile(o: VqProfileOptions = VQ_DECODER_PROFILE_DEFAULTS): OptimizationProfile {
  checkVq(o);
  const g = (s: number) => s / 16;
  return {
    name: `codes_le_${g(o.maxSide)}`,
    shapes: { [VQ_DECODER_INPUTS.codes.name]: { min: [1, 1, 1], opt: [1, g(o.optSide), g(o.optSide)], max: [o.maxBatch, g(o.maxSide), g(o.maxSide)] } },
  };
}

// ---- memory estimates ------------------------------------------------------------------------------

export interface TransformerDims {
  dModel: number;
  nHeads: number;
  nLayers: number;
  mlpHidden: number;
  vocab: number;
  codebook: number;
  /** Bytes per weight and activation element (2 for bf16). */
  elemBytes: number;
}

export const DIMOO_8B_DIMS: Readonly<TransformerDims> = Object.freeze({
  dModel: 4096,
  nHeads: 32,
  nLayers: 32,
  mlpHidden: 12288,
  vocab: 134548,
  codebook: 8192,
  elemBytes: 2,
});

export interface TransformerMemoryEstimate {
  bucket: string;
  weightsBytes: number;
  /** Per-layer working set at the profile maximum: T*(6d + 3h) elements (x, norm, q, k, v, attn out, gate, up, product). */
  layerActivationBytes: number;
  /** Target logits at the maximum shapes, fp32: G*K*M*8192 (image) + H*J*N*V (text), G = maxRows/2. */
  logitsBytes: number;
  /** Attention scores R*heads*L^2 in fp32 if TensorRT does NOT fuse attention (an upper bound; fused MHA needs ~0). */
  unfusedAttentionBytes: number;
}

export function estimateTransformerMemory(dims: TransformerDims = DIMOO_8B_DIMS, buckets: readonly TransformerBucket[] = TRANSFORMER_BUCKETS): TransformerMemoryEstimate[] {
  const d = dims.dModel;
  const h = dims.mlpHidden;
  const params = dims.nLayers * (4 * d * d + 3 * d * h + 2 * d) + 2 * dims.vocab * d + d;
  return buckets.map((b) => {
    const T = b.maxRows * b.maxLen;
    const maxH = Math.min(MAX_TEXT_REQUESTS, b.maxRows);
    const maxN = Math.min(MAX_TEXT_TARGETS, b.maxLen);
    return {
      bucket: b.name,
      weightsBytes: params * dims.elemBytes,
      layerActivationBytes: T * (6 * d + 3 * h) * dims.elemBytes,
      logitsBytes: 4 * (maxImageRequests(b) * MAX_BRANCHES * b.maxImageTargets * dims.codebook + maxH * MAX_TEXT_BRANCHES * maxN * dims.vocab),
      unfusedAttentionBytes: 4 * b.maxRows * dims.nHeads * b.maxLen * b.maxLen,
    };
  });
}

/**
 * VQ activation working set at the profile maximum, fp32: encoder ~3 tensors of 128 channels at full
 * resolution per image plus the [h*w, 8192] distance matrix; decoder ~ (256 + 256 + 128 + 128) channels at
 * full resolution per image (the last up block's first resnet after the 2x upsample). Rough; TensorRT
 * fuses and reuses buffers, so real numbers are usually lower.
 */
export function estimateVqMemory(kind: "encoder" | "decoder", o: VqProfileOptions, widest = 128, codes = 8192): number {
  const px = o.maxSide * o.maxSide;
  if (kind === "encoder") return o.maxBatch * (3 * widest * px * 4 + (px / 256) * codes * 4);
  return o.maxBatch * (6 * widest * px * 4);
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
