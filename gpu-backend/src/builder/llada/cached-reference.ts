// Plain TypeScript reference of one cached-transformer step (docs/model.md §6.3), for tiny configs, built
// on reference.ts: the state is each branch's pre-RoPE keys and values per layer and its codebook logits
// at every position, carried from step to step by the caller as Triton carries the implicit state. The
// cached graph (cached-graph.ts) is tested against it, over several steps in a row.
//
// Per branch, independently (the reference runs B = 1): embed the ids at the recompute positions; per
// layer overwrite the cache rows at those positions with the new k, v; rotate the queries at their true
// positions and the whole key cache at 0..L-1; attend over the keys 0..seq_len-1 only (the key padding
// mask); MLP; ln_f and the codebook head, written into the logit cache. Guidance, sampling and the max
// logit then read the updated logit cache.

import { CODEBOOK_SIZE, IMAGE_OFFSET } from "../../model/tokens";
import { ropeTables } from "../onnx/ops";
import type { CachedStep } from "./cached-call";
import { headDim, type LladaConfig } from "./config";
import { attendRows, decoderBlocksRef, embedRows, guideAndSample, lladaHead, ropeRows, type ModeResult } from "./reference";
import type { LladaWeights } from "./weights";

/** The implicit state of one sequence, flat row-major like the engine's state tensors. */
export interface CachedState {
  K: number;
  L: number;
  /** Per layer [K, L, kv] pre-RoPE keys and values. */
  keys: Float32Array[];
  values: Float32Array[];
  /** [K, L, 8192] codebook-slice logits. */
  logits: Float32Array;
}

/** All-zero state of K branches of length L (what a sequence starts from before its first refresh). */
export function zeroCachedState(cfg: LladaConfig, K: number, L: number): CachedState {
  const kv = cfg.nKvHeads * headDim(cfg);
  return {
    K,
    L,
    keys: Array.from({ length: cfg.nLayers }, () => new Float32Array(K * L * kv)),
    values: Array.from({ length: cfg.nLayers }, () => new Float32Array(K * L * kv)),
    logits: new Float32Array(K * L * CODEBOOK_SIZE),
  };
}

export interface CachedStepResult {
  /** The state after the step (the input state is left untouched). */
  state: CachedState;
  /** [M] codes, softmax confidence and decision margins; per-branch target logits and their combination. */
  image: ModeResult;
  /** [K, L] maximum codebook logit of every position, from the updated logit cache. */
  maxLogit: Float32Array;
}

function copyState(s: CachedState): CachedState {
  return { K: s.K, L: s.L, keys: s.keys.map((k) => k.slice()), values: s.values.map((v) => v.slice()), logits: s.logits.slice() };
}

/** One step of the cached transformer on `state` (zero or carried from the previous step). */
export function cachedStepReference(cfg: LladaConfig, w: LladaWeights, state: CachedState, step: CachedStep): CachedStepResult {
  const { K, L, P, M } = step;
  if (state.K !== K || state.L !== L) throw new Error(`reference: state is [${state.K}, ${state.L}], the step [${K}, ${L}]`);
  const d = cfg.dModel;
  const hd = headDim(cfg);
  const kv = cfg.nKvHeads * hd;
  const { cos, sinSigned } = ropeTables(hd, cfg.ropeTheta, L);
  const next = copyState(state);
  for (let k = 0; k < K; k++) {
    const len = Number(step.seqLens[k]);
    if (!(len >= 1 && len <= L)) throw new Error(`reference: seq_lens[${k}] = ${len} outside [1, ${L}]`);
    // A padded list repeats positions; each position is computed once (the engine computes equal rows).
    const positions = [...new Set(Array.from({ length: P }, (_, p) => Number(step.recompute[k * P + p])))];
    for (const p of positions) if (!(p >= 0 && p < L)) throw new Error(`reference: recompute position ${p} outside [0, ${L})`);
    const n = positions.length;
    const x = embedRows(
      cfg,
      w,
      positions.map((p) => Number(step.inputIds[k * L + p])),
    );
    decoderBlocksRef(cfg, w, x, n, (layer, q, kNew, vNew) => {
      const keys = next.keys[layer].subarray(k * L * kv, (k + 1) * L * kv);
      const values = next.values[layer].subarray(k * L * kv, (k + 1) * L * kv);
      positions.forEach((p, i) => {
        keys.set(kNew.subarray(i * kv, (i + 1) * kv), p * kv);
        values.set(vNew.subarray(i * kv, (i + 1) * kv), p * kv);
      });
      ropeRows(q, n, cfg.nHeads, hd, cos, sinSigned, positions);
      const rotated = keys.slice(0, len * kv);
      ropeRows(rotated, len, cfg.nKvHeads, hd, cos, sinSigned);
      return attendRows(cfg, q, n, rotated, values, len);
    });
    positions.forEach((p, i) => {
      const logits = lladaHead(cfg, w, x.subarray(i * d, (i + 1) * d), IMAGE_OFFSET, CODEBOOK_SIZE);
      next.logits.set(logits, (k * L + p) * CODEBOOK_SIZE);
    });
  }

  const maxLogit = new Float32Array(K * L);
  for (let r = 0; r < K * L; r++) {
    let mx = -Infinity;
    for (let c = 0; c < CODEBOOK_SIZE; c++) mx = Math.max(mx, next.logits[r * CODEBOOK_SIZE + c]);
    maxLogit[r] = mx;
  }
  const branchLogits = new Float32Array(K * M * CODEBOOK_SIZE);
  for (let k = 0; k < K; k++)
    for (let m = 0; m < M; m++) {
      const p = Number(step.targets[k * M + m]);
      if (!(p >= 0 && p < Number(step.seqLens[k]))) throw new Error(`reference: target ${p} of branch ${k} is not a valid position`);
      branchLogits.set(next.logits.subarray((k * L + p) * CODEBOOK_SIZE, (k * L + p + 1) * CODEBOOK_SIZE), (k * M + m) * CODEBOOK_SIZE);
    }
  const image = guideAndSample(branchLogits, { G: 1, K, M, weights: step.weights, uniforms: step.uniforms, temperature: [step.temperature] }, CODEBOOK_SIZE);
  return { state: next, image, maxLogit };
}
