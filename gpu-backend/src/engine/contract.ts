// The engine contract: model names, tensor names, datatypes and shapes shared by the graph builder, the
// config.pbtxt writer, the embedded backend's tests and the orchestrator. docs/engine-contract.md explains it.
//
// One transformer call runs R branch rows (right-padded to L) and returns, for G requests, the sampled
// token and its confidence at M aligned target positions. Guidance and sampling happen in the engine, so
// per step only ids, indices and uniforms go in and tokens and confidences come out (never logits).

export const TRANSFORMER_MODEL = "dimoo_transformer";
export const VQ_ENCODER_MODEL = "vq_encoder";
export const VQ_DECODER_MODEL = "vq_decoder";

export type ContractDType = "INT64" | "INT32" | "FP32" | "UINT8" | "BF16";

export interface TensorSpec {
  name: string;
  dtype: ContractDType;
  /** Symbolic dims, for documentation and config checks; -1 in config.pbtxt. */
  dims: string[];
  doc: string;
}

/**
 * Transformer inputs. Branch rows of all requests share one [R, L] batch. Targets are flat indices
 * `row * L + position` into that batch: slot m of branch k of request g sits at
 * `image_targets[g, k', m] + image_branch_offsets[g, k]`, k' = 0 when Kt = 1 (one list for all branches,
 * each branch shifted by its offset: what every sampler sends, since branches differ only in the prompt
 * before a shared answer region) and k' = k when Kt = K (the general form: a list per branch). A request's
 * K branches can so sit at different positions (the unconditional prompt is shorter than the conditional
 * one) and still be combined per target slot, while the slot list crosses the wire once. Ids, lengths, targets and tokens are
 * INT32, the narrowest integer both Triton and TensorRT engine I/O take; the graph casts where ONNX ops want
 * int64. Image mode works on the codebook slice [IMAGE_OFFSET, VOCAB_SIZE); text mode on the whole
 * vocabulary. Either mode may be empty (G = 0 or M = 0) in a call.
 */
export const TRANSFORMER_INPUTS = {
  inputIds: { name: "input_ids", dtype: "INT32", dims: ["R", "L"], doc: "token ids, right-padded with 0" },
  seqLens: { name: "seq_lens", dtype: "INT32", dims: ["R"], doc: "true length of each row; keys past it are masked out of attention" },
  imageTargets: { name: "image_targets", dtype: "INT32", dims: ["G", "Kt", "M"], doc: "flat row*L+pos index of target slot m of request g before the branch offset; Kt = 1 (one list) or K (a list per branch)" },
  imageBranchOffsets: { name: "image_branch_offsets", dtype: "INT32", dims: ["G", "K"], doc: "added to request g's targets for branch k" },
  imageWeights: { name: "image_weights", dtype: "FP32", dims: ["G", "K"], doc: "guidance weights: combined = sum_k w_k * logits_k (codebook slice)" },
  imageUniforms: { name: "image_uniforms", dtype: "FP32", dims: ["G", "M"], doc: "one uniform in [0,1) per target slot for inverse-CDF sampling" },
  imageTemperature: { name: "image_temperature", dtype: "FP32", dims: ["G"], doc: "sampling temperature; 0 = argmax" },
  textTargets: { name: "text_targets", dtype: "INT32", dims: ["H", "Jt", "N"], doc: "as image_targets, for text mode" },
  textBranchOffsets: { name: "text_branch_offsets", dtype: "INT32", dims: ["H", "J"], doc: "as image_branch_offsets, for text mode" },
  textWeights: { name: "text_weights", dtype: "FP32", dims: ["H", "J"], doc: "guidance weights over the full vocabulary" },
  textUniforms: { name: "text_uniforms", dtype: "FP32", dims: ["H", "N"], doc: "uniforms for text sampling" },
  textTemperature: { name: "text_temperature", dtype: "FP32", dims: ["H"], doc: "0 = argmax" },
} as const satisfies Record<string, TensorSpec>;

export const TRANSFORMER_OUTPUTS = {
  imageTokens: { name: "image_tokens", dtype: "INT32", dims: ["G", "M"], doc: "sampled codebook index 0..8191 (add IMAGE_OFFSET for the token id)" },
  imageConfidence: { name: "image_confidence", dtype: "FP32", dims: ["G", "M"], doc: "softmax(combined)[code], not divided by temperature" },
  imageMaxLogit: { name: "image_max_logit", dtype: "FP32", dims: ["G", "K", "M"], doc: "per-branch maximum codebook logit at each target (ML cache)" },
  textTokens: { name: "text_tokens", dtype: "INT32", dims: ["H", "N"], doc: "sampled token id over the full vocabulary" },
  textProbability: { name: "text_probability", dtype: "FP32", dims: ["H", "N"], doc: "softmax(combined)[token]" },
} as const satisfies Record<string, TensorSpec>;

/** VQ encoder: uint8 RGB pixels to codebook indices; normalisation to [0,1] happens in the graph. */
export const VQ_ENCODER_INPUTS = {
  pixels: { name: "pixels", dtype: "UINT8", dims: ["B", "3", "H", "W"], doc: "RGB, H and W multiples of 16" },
} as const satisfies Record<string, TensorSpec>;
export const VQ_ENCODER_OUTPUTS = {
  codes: { name: "codes", dtype: "INT64", dims: ["B", "h", "w"], doc: "codebook index per 16x16 cell, h=H/16, w=W/16" },
} as const satisfies Record<string, TensorSpec>;

/** VQ decoder: codebook indices to uint8 RGB pixels; clip, scale and round happen in the graph. */
export const VQ_DECODER_INPUTS = {
  codes: { name: "codes", dtype: "INT64", dims: ["B", "h", "w"], doc: "codebook indices 0..8191" },
} as const satisfies Record<string, TensorSpec>;
export const VQ_DECODER_OUTPUTS = {
  pixels: { name: "pixels", dtype: "UINT8", dims: ["B", "3", "H", "W"], doc: "round(clip(x,0,1)*255)" },
} as const satisfies Record<string, TensorSpec>;

// ---- the stateful transformer (ML-Cache) -----------------------------------------------------------
//
// One Triton sequence per request (B = 1, as in the reference); the request's K guidance branches (1..3)
// run in one call. Triton keeps each layer's pre-RoPE keys and values and the codebook-slice logits of
// every position of every branch between calls (implicit state), so a cached step only recomputes the P
// positions in `recompute`; a refresh step sends every position 0..L-1. docs/engine-contract.md,
// "dimoo_transformer_cached", explains one step.

export const TRANSFORMER_CACHED_MODEL = "dimoo_transformer_cached";

/**
 * Inputs of one step; max_batch_size 0, so these are the full shapes. L is fixed for the whole sequence.
 * As in the stateless model: INT32 integers, and one target list plus a shift per branch (Kt = 1) or, in
 * general, a list per branch (Kt = K).
 */
export const TRANSFORMER_CACHED_INPUTS = {
  inputIds: { name: "input_ids", dtype: "INT32", dims: ["K", "L"], doc: "the K branch rows, right-padded with 0 to L (the same L on every step of a sequence)" },
  seqLens: { name: "seq_lens", dtype: "INT32", dims: ["K"], doc: "true length of each branch; keys past it are masked out of attention" },
  recompute: {
    name: "recompute",
    dtype: "INT32",
    dims: ["Kr", "P"],
    doc: "positions (< L) to recompute per branch, Kr = K, or for every branch, Kr = 1; [1, 0] = every position 0..L-1 (a refresh); a shorter list repeats one of its own positions",
  },
  imageTargets: { name: "image_targets", dtype: "INT32", dims: ["Kt", "M"], doc: "position of target slot m before the branch shift; Kt = 1 (one list) or K (a list per branch)" },
  imageTargetShift: { name: "image_target_shift", dtype: "INT32", dims: ["K"], doc: "added to the targets for branch k; position + shift is in 0..seq_len-1" },
  imageWeights: { name: "image_weights", dtype: "FP32", dims: ["K"], doc: "guidance weights: combined = sum_k w_k * logits_k (codebook slice)" },
  imageUniforms: { name: "image_uniforms", dtype: "FP32", dims: ["M"], doc: "one uniform in [0,1) per target slot for inverse-CDF sampling" },
  imageTemperature: { name: "image_temperature", dtype: "FP32", dims: ["1"], doc: "sampling temperature; 0 = argmax" },
  quantileRanks: {
    name: "quantile_ranks",
    dtype: "INT32",
    dims: ["K", "2"],
    doc: "per branch the ranks lo, hi (0-based, ascending, over positions 0..seq_len-1) of the ML-Cache quantile; zeros when the next recompute set is not wanted",
  },
} as const satisfies Record<string, TensorSpec>;

export const TRANSFORMER_CACHED_OUTPUTS = {
  imageTokens: { name: "image_tokens", dtype: "INT32", dims: ["M"], doc: "sampled codebook index 0..8191 at each target slot" },
  imageConfidence: { name: "image_confidence", dtype: "FP32", dims: ["M"], doc: "softmax(combined)[code], not divided by temperature" },
  recomputeCodes: {
    name: "recompute_codes",
    dtype: "UINT8",
    dims: ["K", "L"],
    doc: "per position of each branch: 2 where max_logit <= quantile_values[k,0], 1 where it equals quantile_values[k,1] and is above the first, else 0 (and 0 past seq_len)",
  },
  quantileValues: { name: "quantile_values", dtype: "FP32", dims: ["K", "2"], doc: "per branch the max logits of ranks lo and hi (quantile_ranks) over its own positions" },
  maxLogit: { name: "max_logit", dtype: "FP32", dims: ["K", "L"], doc: "max codebook logit of every position of every branch, read from the updated logit cache (for tests; the orchestrator reads the two above)" },
} as const satisfies Record<string, TensorSpec>;

/** One implicit state: the graph reads `input` and writes `output`; Triton feeds output i as input i+1. */
export interface StateSpec {
  input: string;
  output: string;
  /** "KV" = n_kv_heads * head_dim (4096 for LLaDA-8B). */
  dims: string[];
  doc: string;
}

/**
 * The implicit state of a sequence, kept by Triton between calls: per layer the pre-RoPE keys and values,
 * and the codebook-slice logits. Its dtype is the engine's matmul dtype (BF16 in TensorRT engines, FP32 in
 * the onnxruntime dev models, which cannot carry BF16). Layer numbers are zero-padded so that no state name
 * is a prefix of another.
 */
export const TRANSFORMER_CACHED_STATE = {
  key: layerState("key", "pre-RoPE keys"),
  value: layerState("value", "values"),
  logits: {
    input: "logit_cache_in",
    output: "logit_cache_out",
    dims: ["K", "L", "8192"],
    doc: "codebook-slice logits [126356, 134548) of every position of every branch",
  } satisfies StateSpec,
} as const;

function layerState(kind: "key" | "value", what: string): (layer: number) => StateSpec {
  return (layer) => ({
    input: `${kind}_cache_in_${layerTag(layer)}`,
    output: `${kind}_cache_out_${layerTag(layer)}`,
    dims: ["K", "L", "KV"],
    doc: `${what} of layer ${layer} at every position of every branch`,
  });
}

function layerTag(layer: number): string {
  return String(layer).padStart(2, "0");
}

/** Every state of an n-layer model in graph order: keys and values of each layer, then the logits. */
export function cachedTransformerStates(nLayers: number): StateSpec[] {
  if (!(Number.isInteger(nLayers) && nLayers >= 1 && nLayers <= 100)) throw new RangeError(`state names are laid out for 1..100 layers, not ${nLayers}`);
  const out: StateSpec[] = [];
  for (let i = 0; i < nLayers; i++) out.push(TRANSFORMER_CACHED_STATE.key(i), TRANSFORMER_CACHED_STATE.value(i));
  out.push(TRANSFORMER_CACHED_STATE.logits);
  return out;
}
