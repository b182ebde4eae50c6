// One request's share of one transformer step: the boundary between a sampler (pure state machine) and the
// GPU engine. The packer (packer.ts) joins several requests' StepInputs into one contract call.
//
// A sampler says, for one denoising step: which token rows to run (one per guidance branch), where in
// each row the M target slots are (aligned across branches, so the engine can form
// sum_k weights[k] * logits_k[targets[k][m]]), and one uniform per slot for inverse-CDF sampling. The
// engine answers with one token and its confidence per slot. No logits ever cross this boundary.

/** Which vocabulary slice the engine samples from. */
export type StepMode = "image" | "text";

export interface StepInputs {
  /** "image": codebook slice [IMAGE_OFFSET, VOCAB_SIZE), tokens come back as 0..8191. "text": full vocab. */
  mode: StepMode;
  /** K token rows, one per guidance branch, each of its own length. */
  branches: Int32Array[];
  /** targets[k][m]: position in branches[k] of target slot m; every branch has the same M. */
  targets: Int32Array[];
  /**
   * K guidance weights: combined = sum_k weights[k] * logits_k. The engine receives targets[0] once and
   * one shift per branch, so targets[k] must be targets[0] shifted by a constant (every sampler's branches
   * differ only in their prompt before a shared answer region); the packers check it.
   */
  weights: Float32Array;
  /** M uniforms in (0,1), one per target slot (rng stream "sample", counter (step, slot)). */
  uniforms: Float32Array;
  /** 0 = argmax; otherwise sample from softmax(combined / temperature). */
  temperature: number;
  /** Set when the request runs cached (ML-Cache): the step goes to the stateful model, alone. */
  cache?: CachedStep;
}

/**
 * One step of a request that runs as its own engine sequence: the stateful model keeps every branch's
 * K/V and codebook logits between the sequence's steps and recomputes only the named positions.
 */
export interface CachedStep {
  /** The request's sequence (Triton's correlation id), unique among the host's live sequences. */
  sequenceId: bigint;
  /** First step: the engine starts the sequence's state. Always a refresh. */
  start: boolean;
  /** Last step: the engine frees the state after it. */
  end: boolean;
  /** Positions to recompute, per branch (each within its row); absent = every position (a refresh). */
  recompute?: Int32Array[];
  /**
   * Set when the next step is cached: the ML-Cache's cache_ratio, so that this step's outputs carry the
   * engine's selection of the next recompute sets (StepOutputs.recomputeSelection).
   */
  selectForRatio?: number;
}

/**
 * One branch's ML-Cache rule as the engine evaluates it, instead of the branch's max logits: over the
 * branch's own positions with max logits x, `low` = sorted(x)[lo] and `high` = sorted(x)[hi] for the ranks
 * of the 1 - cache_ratio quantile (lib/quantile.ts), and per position codes[i] = 2 where x_i <= low,
 * 1 where low < x_i <= high (then x_i == high), else 0. sampling/ml-cache.ts turns it into the positions.
 */
export interface RecomputeSelection {
  codes: Uint8Array;
  low: number;
  high: number;
}

export interface StepOutputs {
  /** M sampled tokens: codebook index 0..8191 in image mode, full vocabulary id in text mode. */
  tokens: Int32Array;
  /** M confidences: softmax(combined)[token], NOT divided by temperature. */
  confidence: Float32Array;
  /**
   * Cached steps that choose the next recompute sets (CachedStep.selectForRatio): per branch, the engine's
   * evaluation of the rule over every position's maximum codebook logit after the step.
   */
  recomputeSelection?: RecomputeSelection[];
}
