// The engine contract: model names, tensor names, datatypes and shapes shared by the graph builder, the
// config.pbtxt writer, the embedded backend's tests and the orchestrator. docs/engine-contract.md explains it.
//
// One transformer call runs R branch rows (right-padded to L) and returns, for G requests, the sampled
// token and its confidence at M aligned target positions. Guidance and sampling happen in the engine, so
// per step only ids, indices and uniforms go in and tokens and confidences come out (never logits).

export const TRANSFORMER_MODEL = "dimoo_transformer";
export const VQ_ENCODER_MODEL = "vq_encoder";
export const VQ_DECODER_MODEL = "vq_decoder";

export type ContractDType = "INT64" | "INT32" | "FP32" | "UINT8";

export interface TensorSpec {
  name: string;
  dtype: ContractDType;
  /** Symbolic dims, for documentation and config checks; -1 in config.pbtxt. */
  dims: string[];
  doc: string;
}

/**
 * Transformer inputs. Branch rows of all requests share one [R, L] batch. Targets are flat indices
 * `row * L + position` into that batch, so a request's K branches can sit at different positions
 * (the unconditional prompt is shorter than the conditional one) and still be combined per target slot.
 * Image mode works on the codebook slice [IMAGE_OFFSET, VOCAB_SIZE); text mode on the whole vocabulary.
 * Either mode may be empty (G = 0 or M = 0) in a call.
 */
export const TRANSFORMER_INPUTS = {
  inputIds: { name: "input_ids", dtype: "INT64", dims: ["R", "L"], doc: "token ids, right-padded with 0" },
  seqLens: { name: "seq_lens", dtype: "INT64", dims: ["R"], doc: "true length of each row; keys past it are masked out of attention" },
  imageTargets: { name: "image_targets", dtype: "INT64", dims: ["G", "K", "M"], doc: "flat row*L+pos index of target slot m in branch k of request g" },
  imageWeights: { name: "image_weights", dtype: "FP32", dims: ["G", "K"], doc: "guidance weights: combined = sum_k w_k * logits_k (codebook slice)" },
  imageUniforms: { name: "image_uniforms", dtype: "FP32", dims: ["G", "M"], doc: "one uniform in [0,1) per target slot for inverse-CDF sampling" },
  imageTemperature: { name: "image_temperature", dtype: "FP32", dims: ["G"], doc: "sampling temperature; 0 = argmax" },
  textTargets: { name: "text_targets", dtype: "INT64", dims: ["H", "J", "N"], doc: "as image_targets, for text mode" },
  textWeights: { name: "text_weights", dtype: "FP32", dims: ["H", "J"], doc: "guidance weights over the full vocabulary" },
  textUniforms: { name: "text_uniforms", dtype: "FP32", dims: ["H", "N"], doc: "uniforms for text sampling" },
  textTemperature: { name: "text_temperature", dtype: "FP32", dims: ["H"], doc: "0 = argmax" },
} as const satisfies Record<string, TensorSpec>;

export const TRANSFORMER_OUTPUTS = {
  imageTokens: { name: "image_tokens", dtype: "INT64", dims: ["G", "M"], doc: "sampled codebook index 0..8191 (add IMAGE_OFFSET for the token id)" },
  imageConfidence: { name: "image_confidence", dtype: "FP32", dims: ["G", "M"], doc: "softmax(combined)[code], not divided by temperature" },
  imageMaxLogit: { name: "image_max_logit", dtype: "FP32", dims: ["G", "K", "M"], doc: "per-branch maximum codebook logit at each target (ML cache)" },
  textTokens: { name: "text_tokens", dtype: "INT64", dims: ["H", "N"], doc: "sampled token id over the full vocabulary" },
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
