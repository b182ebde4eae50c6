// One cached step (ML-Cache) as the stateful model's call. A cached request runs as its own engine
// sequence, alone in its call (B = 1, as in the reference): its K branch rows right-padded to the
// sequence's length L, the positions to recompute (a refresh sends none: an empty [1, 0] list means every
// position of every branch; a cached step a list per branch, padded by repeating the branch's first
// position: recomputing a position twice writes the same values), the first branch's target slots with a shift per branch (the general form, a
// list per branch, only where branches are not shifts of each other), and the guidance and sampling inputs
// of the stateless model. All integers are int32. The engine answers with tokens and confidences and,
// when the next step is cached, its evaluation of the ML-Cache rule: a byte per position and two values
// per branch (contract.ts), from which the sampler takes the next recompute set.
import { quantileRanks } from "../lib/quantile";
import { int64ToInt32 } from "../lib/numeric";
import type { CachedStep, RecomputeSelection, StepInputs, StepOutputs } from "./step";

export class CachedCallError extends Error {
  override name = "CachedCallError";
}

export interface CachedCall {
  sequenceId: bigint;
  start: boolean;
  end: boolean;
  /** Branches K, row length L, positions recomputed per branch P (L on a refresh), target slots M. */
  branches: number;
  length: number;
  recomputeLength: number;
  slots: number;
  /** Recompute lists Kr and target lists Kt: 1 (one for every branch) or K. */
  recomputeLists: number;
  targetLists: number;
  inputIds: Int32Array; // [K, L]
  seqLens: Int32Array; // [K]
  recompute: Int32Array; // [Kr, P], or empty ([1, 0]) on a refresh
  targets: Int32Array; // [Kt, M]
  targetShift: Int32Array; // [K]
  weights: Float32Array; // [K]
  uniforms: Float32Array; // [M]
  temperature: Float32Array; // [1]
  /** Whether the step asks for the next recompute sets; quantileRanks is [K, 2] zeros when not. */
  select: boolean;
  quantileRanks: Int32Array; // [K, 2]
  /** Sum of the positions recomputed over the branches (what the transformer really processes). */
  tokens: number;
}

export interface CachedEngineOutputs {
  tokens: BigInt64Array | Int32Array; // [M]
  confidence: Float32Array; // [M]
  /** When the call selects: recompute_codes [K, L] and quantile_values [K, 2]. */
  codes?: Uint8Array;
  quantile?: Float32Array;
}

/** Packs one request's cached step. `length` (L) is fixed for the whole sequence: the longest row. */
export function packCachedStep(inputs: StepInputs, cache: CachedStep, length: number): CachedCall {
  const K = inputs.branches.length;
  if (K === 0) throw new CachedCallError("no branches");
  if (inputs.targets.length !== K || inputs.weights.length !== K) throw new CachedCallError(`${inputs.targets.length} target lists and ${inputs.weights.length} weights for ${K} branches`);
  const M = inputs.uniforms.length;
  if (cache.recompute && cache.recompute.length !== K) throw new CachedCallError(`${cache.recompute.length} recompute sets for ${K} branches`);

  const inputIds = new Int32Array(K * length);
  const seqLens = new Int32Array(K);
  let tokens = 0;
  for (let k = 0; k < K; k++) {
    const row = inputs.branches[k];
    if (row.length > length) throw new CachedCallError(`branch ${k}: row of ${row.length} tokens exceeds L=${length}`);
    inputIds.set(row, k * length);
    seqLens[k] = row.length;
    const t = inputs.targets[k];
    if (t.length !== M) throw new CachedCallError(`branch ${k}: ${t.length} targets for ${M} uniforms`);
    for (let m = 0; m < M; m++) if (t[m] < 0 || t[m] >= row.length) throw new CachedCallError(`branch ${k}: target ${t[m]} outside row of ${row.length}`);
  }

  // A refresh recomputes 0..L-1 in every branch, which the engine infers from an empty list (a shorter
  // branch recomputes its padding too, which attention masks out and nothing reads).
  let recompute: Int32Array, P: number, Kr: number;
  if (!cache.recompute) {
    P = length;
    Kr = 1;
    recompute = new Int32Array(0);
    for (let k = 0; k < K; k++) tokens += seqLens[k];
  } else {
    const sets = cache.recompute;
    P = Math.max(...sets.map((s) => s.length));
    Kr = K;
    recompute = new Int32Array(K * P);
    for (let k = 0; k < K; k++) {
      const set = sets[k];
      if (set.length === 0) throw new CachedCallError(`branch ${k}: empty recompute set`);
      for (let j = 0; j < P; j++) {
        const pos = j < set.length ? set[j] : set[0];
        if (pos < 0 || pos >= seqLens[k]) throw new CachedCallError(`branch ${k}: recompute position ${pos} outside row of ${seqLens[k]}`);
        recompute[k * P + j] = pos;
      }
      tokens += set.length;
    }
  }

  // Targets: branch 0's list and a shift per branch when the branches are shifts of each other.
  const targetShift = new Int32Array(K);
  let shifted = true;
  for (let k = 1; k < K && shifted; k++) {
    const d = M > 0 ? inputs.targets[k][0] - inputs.targets[0][0] : 0;
    for (let m = 0; m < M; m++) if (inputs.targets[k][m] - inputs.targets[0][m] !== d) shifted = false;
    targetShift[k] = d;
  }
  const Kt = shifted ? 1 : K;
  const targets = new Int32Array(Kt * M);
  if (shifted) targets.set(inputs.targets[0]);
  else {
    targetShift.fill(0);
    for (let k = 0; k < K; k++) targets.set(inputs.targets[k], k * M);
  }

  const select = cache.selectForRatio !== undefined;
  const ranks = new Int32Array(2 * K);
  if (select) {
    for (let k = 0; k < K; k++) {
      const { lo, hi } = quantileRanks(seqLens[k], 1 - cache.selectForRatio!);
      ranks[2 * k] = lo;
      ranks[2 * k + 1] = hi;
    }
  }
  return {
    sequenceId: cache.sequenceId,
    start: cache.start,
    end: cache.end,
    branches: K,
    length,
    recomputeLength: P,
    slots: M,
    recomputeLists: Kr,
    targetLists: Kt,
    inputIds,
    seqLens,
    recompute,
    targets,
    targetShift,
    weights: inputs.weights.slice(),
    uniforms: inputs.uniforms.slice(),
    temperature: Float32Array.of(inputs.temperature),
    select,
    quantileRanks: ranks,
    tokens,
  };
}

/** The step's outputs for the sampler: tokens, confidences, and when asked each branch's recompute selection. */
export function unpackCachedStep(call: CachedCall, out: CachedEngineOutputs): StepOutputs {
  const { slots: M, branches: K, length: L } = call;
  if (out.tokens.length !== M || out.confidence.length !== M) throw new CachedCallError(`engine returned ${out.tokens.length} tokens for ${M} slots`);
  // int64ToInt32 copies an int64 tensor but hands an int32 one back as is: copy only then.
  const tokens = out.tokens instanceof Int32Array ? out.tokens.slice() : int64ToInt32(out.tokens);
  if (!call.select) return { tokens, confidence: out.confidence.slice() };
  const { codes, quantile } = out;
  if (codes?.length !== K * L || quantile?.length !== 2 * K) throw new CachedCallError(`engine returned ${codes?.length} recompute codes and ${quantile?.length} quantile values for ${K}x${L}`);
  const recomputeSelection: RecomputeSelection[] = Array.from({ length: K }, (_, k) => ({
    codes: codes.slice(k * L, k * L + call.seqLens[k]),
    low: quantile[2 * k],
    high: quantile[2 * k + 1],
  }));
  return { tokens, confidence: out.confidence.slice(), recomputeSelection };
}

/**
 * The call that ends a sequence early (cancelled, failed, past its deadline): the last call again as a
 * one-position cached step with the end flag, so the engine frees the state now rather than at its idle
 * timeout. Its outputs are ignored.
 */
export function endingCall(last: CachedCall): CachedCall {
  const recompute = new Int32Array(1); // position 0 of every branch
  return { ...last, start: false, end: true, recomputeLength: 1, recomputeLists: 1, recompute, select: false, quantileRanks: new Int32Array(2 * last.branches), tokens: last.branches };
}
