// Max-Logit cache bookkeeping for text-to-image (docs/model.md §6): which steps run a full forward
// ("refresh"), and on cached steps which positions are recomputed (the compute_ratio fraction with the
// lowest maximum image logit, chosen from the previous step's logits). Pure arithmetic; the engine owns the
// K/V and logit caches themselves.

import { InvalidArgument } from "../model/errors";

export interface MlCacheParams {
  /** Fraction of positions reused on a cached step (reference default 0.9). */
  cacheRatio: number;
  /** Fraction of the steps that always refresh at the start (default 0.3). */
  warmupRatio: number;
  /** Refresh every this many steps after warm-up (default 5). */
  refreshInterval: number;
}

export const ML_CACHE_DEFAULTS: MlCacheParams = { cacheRatio: 0.9, warmupRatio: 0.3, refreshInterval: 5 };

/**
 * refresh[s] = s <= warmup_step || (s - warmup_step) % refresh_interval == 0, warmup_step = int(T * warmup).
 * T=64 with the defaults refreshes steps 0..19, 24, 29, ..., 59 (28 full steps, 36 cached).
 */
export function mlCacheRefreshSteps(timesteps: number, p: MlCacheParams = ML_CACHE_DEFAULTS): boolean[] {
  if (!(p.cacheRatio >= 0 && p.cacheRatio < 1)) throw new InvalidArgument("cache_ratio", `must be in [0, 1), got ${p.cacheRatio}`);
  if (!(p.warmupRatio >= 0 && p.warmupRatio <= 1)) throw new InvalidArgument("warmup_ratio", `must be in [0, 1], got ${p.warmupRatio}`);
  if (!Number.isInteger(p.refreshInterval) || p.refreshInterval < 1) {
    throw new InvalidArgument("refresh_interval", `must be an integer >= 1, got ${p.refreshInterval}`);
  }
  const warmup = Math.trunc(timesteps * p.warmupRatio);
  return Array.from({ length: timesteps }, (_, s) => s <= warmup || (s - warmup) % p.refreshInterval === 0);
}

/** torch.quantile(values, q) with linear interpolation (computed in float64). */
export function quantileLinear(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new RangeError("quantile of nothing");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q}`);
  const sorted = Float64Array.from(values).sort();
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Positions to recompute on the next cached step: max logit <= quantile(max logits, 1 - cacheRatio).
 * With distinct values that is floor((1 - cacheRatio)(L - 1)) + 1 positions (427 of 4264 at 0.9).
 */
export function recomputeMask(maxLogits: ArrayLike<number>, cacheRatio: number): Uint8Array {
  const thr = quantileLinear(maxLogits, 1 - cacheRatio);
  const out = new Uint8Array(maxLogits.length);
  for (let i = 0; i < out.length; i++) out[i] = maxLogits[i] <= thr ? 1 : 0;
  return out;
}

/** Positions of one branch to recompute next: those whose max logit is at most the cacheRatio quantile. */
export function recomputePositions(maxLogits: ArrayLike<number>, cacheRatio: number): Int32Array {
  const mask = recomputeMask(maxLogits, cacheRatio);
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) out.push(i);
  return Int32Array.from(out);
}

/** A cached run's bookkeeping, immutable like the sampler's state. */
export interface MlCacheRun {
  /** refresh[s]: step s runs a full forward. */
  readonly refresh: readonly boolean[];
  readonly cacheRatio: number;
  /** Per branch, the positions the next step recomputes if it is a cached step. */
  readonly next?: readonly Int32Array[];
}

export function initMlCache(timesteps: number, p: MlCacheParams = ML_CACHE_DEFAULTS): MlCacheRun {
  return { refresh: mlCacheRefreshSteps(timesteps, p), cacheRatio: p.cacheRatio };
}

/** What step s recomputes: undefined on a refresh step (every position), else each branch's set. */
export function recomputeAt(run: MlCacheRun, step: number): Int32Array[] | undefined {
  if (step >= run.refresh.length || run.refresh[step]) return undefined;
  if (!run.next) throw new Error(`cached step ${step} without the previous step's max logits`);
  return run.next.map((s) => s.slice());
}

/**
 * After step s, from its per-branch max logits: the next step's recompute sets, chosen independently per
 * branch over all of the branch's positions (docs/model.md §6.3). Only needed when the next step is cached.
 */
export function advanceMlCache(run: MlCacheRun, step: number, maxLogits: readonly Float32Array[] | undefined): MlCacheRun {
  const following = step + 1;
  if (following >= run.refresh.length || run.refresh[following]) return { ...run, next: undefined };
  if (!maxLogits) throw new Error(`step ${step} returned no max logits for the cached step after it`);
  return { ...run, next: maxLogits.map((m) => recomputePositions(m, run.cacheRatio)) };
}
