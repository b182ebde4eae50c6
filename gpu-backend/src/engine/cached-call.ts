// One cached step (ML-Cache) as the stateful model's call. A cached request runs as its own engine
// sequence, alone in its call (B = 1, as in the reference): its K branch rows right-padded to the
// sequence's length L, the positions each branch recomputes (padded by repeating the branch's first one:
// recomputing a position twice writes the same values), the target slots per branch, and the guidance and
// sampling inputs of the stateless model. The engine answers with tokens, confidences and every position's
// maximum codebook logit, from which the sampler picks the next recompute set.
import { int64ToInt32, int64Words, writeInt64 } from "../lib/numeric";
import type { CachedStep, StepInputs, StepOutputs } from "./step";

export class CachedCallError extends Error {
  override name = "CachedCallError";
}

export interface CachedCall {
  sequenceId: bigint;
  start: boolean;
  end: boolean;
  /** Branches K, row length L, recompute length P, target slots M. */
  branches: number;
  length: number;
  recomputeLength: number;
  slots: number;
  inputIds: BigInt64Array; // [K, L]
  seqLens: BigInt64Array; // [K]
  recompute: BigInt64Array; // [K, P]
  targets: BigInt64Array; // [K, M]
  weights: Float32Array; // [K]
  uniforms: Float32Array; // [M]
  temperature: Float32Array; // [1]
  /** Sum of the positions recomputed over the branches (what the transformer really processes). */
  tokens: number;
}

export interface CachedEngineOutputs {
  tokens: BigInt64Array | Int32Array; // [M]
  confidence: Float32Array; // [M]
  maxLogit: Float32Array; // [K, L]
}

/** Packs one request's cached step. `length` (L) is fixed for the whole sequence: the longest row. */
export function packCachedStep(inputs: StepInputs, cache: CachedStep, length: number): CachedCall {
  const K = inputs.branches.length;
  if (K === 0) throw new CachedCallError("no branches");
  if (inputs.targets.length !== K || inputs.weights.length !== K) throw new CachedCallError(`${inputs.targets.length} target lists and ${inputs.weights.length} weights for ${K} branches`);
  const M = inputs.uniforms.length;
  const sets = cache.recompute ?? inputs.branches.map((row) => Int32Array.from({ length: row.length }, (_, i) => i));
  if (sets.length !== K) throw new CachedCallError(`${sets.length} recompute sets for ${K} branches`);
  const P = Math.max(...sets.map((s) => s.length));
  if (P === 0) throw new CachedCallError("empty recompute sets");

  const inputIds = new BigInt64Array(K * length);
  const ids = int64Words(inputIds);
  const seqLens = new BigInt64Array(K);
  const recompute = new BigInt64Array(K * P);
  const rec = int64Words(recompute);
  const targets = new BigInt64Array(K * M);
  const tgt = int64Words(targets);
  let tokens = 0;
  for (let k = 0; k < K; k++) {
    const row = inputs.branches[k];
    if (row.length > length) throw new CachedCallError(`branch ${k}: row of ${row.length} tokens exceeds L=${length}`);
    for (let p = 0; p < row.length; p++) ids[2 * (k * length + p)] = row[p];
    seqLens[k] = BigInt(row.length);
    const set = sets[k];
    if (set.length === 0) throw new CachedCallError(`branch ${k}: empty recompute set`);
    for (let j = 0; j < P; j++) {
      const pos = j < set.length ? set[j] : set[0];
      if (pos < 0 || pos >= row.length) throw new CachedCallError(`branch ${k}: recompute position ${pos} outside row of ${row.length}`);
      writeInt64(rec, k * P + j, pos);
    }
    tokens += set.length;
    const t = inputs.targets[k];
    if (t.length !== M) throw new CachedCallError(`branch ${k}: ${t.length} targets for ${M} uniforms`);
    for (let m = 0; m < M; m++) {
      if (t[m] < 0 || t[m] >= row.length) throw new CachedCallError(`branch ${k}: target ${t[m]} outside row of ${row.length}`);
      writeInt64(tgt, k * M + m, t[m]);
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
    inputIds,
    seqLens,
    recompute,
    targets,
    weights: inputs.weights.slice(),
    uniforms: inputs.uniforms.slice(),
    temperature: Float32Array.of(inputs.temperature),
    tokens,
  };
}

/** The step's outputs for the sampler: tokens, confidences, and each branch's max logits over its own row. */
export function unpackCachedStep(call: CachedCall, out: CachedEngineOutputs): StepOutputs {
  const { slots: M, branches: K, length: L } = call;
  if (out.tokens.length !== M || out.confidence.length !== M) throw new CachedCallError(`engine returned ${out.tokens.length} tokens for ${M} slots`);
  if (out.maxLogit.length !== K * L) throw new CachedCallError(`engine returned ${out.maxLogit.length} max logits for ${K}x${L}`);
  // int64ToInt32 copies an int64 tensor but hands an int32 one back as is: copy only then.
  const tokens = out.tokens instanceof Int32Array ? out.tokens.slice() : int64ToInt32(out.tokens);
  const maxLogit = Array.from({ length: K }, (_, k) => out.maxLogit.slice(k * L, k * L + Number(call.seqLens[k])));
  return { tokens, confidence: out.confidence.slice(), maxLogit };
}

/**
 * The call that ends a sequence early (cancelled, failed, past its deadline): the last call again as a
 * one-position cached step with the end flag, so the engine frees the state now rather than at its idle
 * timeout. Its outputs are ignored.
 */
export function endingCall(last: CachedCall): CachedCall {
  const K = last.branches;
  const recompute = new BigInt64Array(K); // position 0 of each branch
  return { ...last, start: false, end: true, recomputeLength: 1, recompute, tokens: K };
}
