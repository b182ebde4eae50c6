// One step of the cached transformer in plain arrays, and its contract tensors (TRANSFORMER_CACHED_INPUTS
// of engine/contract.ts): `new ort.Tensor(t.type, t.data, t.dims)` makes an onnxruntime feed, and the same
// arrays serve a Triton request. Also the recompute lists as the engine wants them: every position on a
// refresh, and per-branch lists padded to one length P by repeating a branch's own position.

import { TRANSFORMER_CACHED_INPUTS } from "../../engine/contract";
import { float32, int32, type ContractTensor } from "./call";

export interface CachedStep {
  /** Branches and the fixed row length of the sequence. */
  K: number;
  L: number;
  /** [K,L] right-padded ids. */
  inputIds: ArrayLike<number | bigint>;
  /** [K] true lengths. */
  seqLens: ArrayLike<number | bigint>;
  /** [K,P] positions to recompute (see recomputeLists). */
  recompute: ArrayLike<number | bigint>;
  P: number;
  /** [K,M] position of target slot m in branch k. */
  targets: ArrayLike<number | bigint>;
  M: number;
  /** [K] guidance weights. */
  weights: ArrayLike<number>;
  /** [M] uniforms in [0,1). */
  uniforms: ArrayLike<number>;
  /** 0 = argmax. */
  temperature: number;
  /** [K,2] ranks lo, hi of the ML-Cache quantile per branch (lib/quantile.ts); zeros when absent. */
  quantileRanks?: ArrayLike<number>;
}

/** The contract input tensors of a step, by input name: recompute and targets in the general form (per branch). */
export function cachedStepTensors(s: CachedStep): Record<string, ContractTensor> {
  const I = TRANSFORMER_CACHED_INPUTS;
  return {
    [I.inputIds.name]: int32(s.inputIds, [s.K, s.L]),
    [I.seqLens.name]: int32(s.seqLens, [s.K]),
    [I.recompute.name]: int32(s.recompute, [s.K, s.P]),
    [I.imageTargets.name]: int32(s.targets, [s.K, s.M]),
    [I.imageTargetShift.name]: int32(new Array(s.K).fill(0), [s.K]),
    [I.imageWeights.name]: float32(s.weights, [s.K]),
    [I.imageUniforms.name]: float32(s.uniforms, [s.M]),
    [I.imageTemperature.name]: float32([s.temperature], [1]),
    [I.quantileRanks.name]: int32(s.quantileRanks ?? new Array(2 * s.K).fill(0), [s.K, 2]),
  };
}

/** A refresh step's recompute input: every position 0..L-1 of each of the K branches. */
export function refreshRecompute(K: number, L: number): { recompute: number[]; P: number } {
  return { recompute: Array.from({ length: K * L }, (_, i) => i % L), P: L };
}

/**
 * The recompute input for per-branch position lists of different lengths: each list is padded to the
 * longest by repeating its own first position (the engine computes the same row twice and writes the same
 * values). Every list needs at least one position.
 */
export function recomputeLists(lists: ReadonlyArray<ArrayLike<number>>): { recompute: number[]; P: number } {
  const P = Math.max(...lists.map((l) => l.length));
  const recompute: number[] = [];
  for (const l of lists) {
    if (l.length === 0) throw new RangeError("recomputeLists: a branch has no position to recompute");
    for (let p = 0; p < P; p++) recompute.push(Number(l[p < l.length ? p : 0]));
  }
  return { recompute, P };
}
