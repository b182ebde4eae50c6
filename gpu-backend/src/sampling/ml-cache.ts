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
