// Max-Logit cache bookkeeping for text-to-image (docs/model.md §6): which steps run a full forward
// ("refresh"), and on cached steps which positions are recomputed (the compute_ratio fraction with the
// lowest maximum image logit, chosen from the previous step's logits). Pure arithmetic; the engine owns the
// K/V and logit caches themselves.

import type { RecomputeSelection } from "../engine/step";
import { interpolateQuantile, quantileRanks } from "../lib/quantile";
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
  const { lo, hi, frac } = quantileRanks(values.length, q);
  const sorted = Float64Array.from(values).sort();
  return interpolateQuantile(sorted[lo], sorted[hi], frac);
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

/**
 * The same rule from the engine's selection (engine/step.ts RecomputeSelection) instead of the values:
 * no value lies strictly between sorted[lo] and sorted[hi], so `x <= threshold` holds for every x <= sorted[lo],
 * for no x > sorted[hi], and for x == sorted[hi] exactly when sorted[hi] <= threshold (interpolation
 * rounding can land on it). The engine marks the first group 2 and the second 1; the threshold is
 * interpolated here as quantileLinear does, so the positions are exactly recomputePositions' positions.
 */
export function selectedPositions(sel: RecomputeSelection, cacheRatio: number): Int32Array {
  const { frac } = quantileRanks(sel.codes.length, 1 - cacheRatio);
  const thr = interpolateQuantile(sel.low, sel.high, frac);
  const withHigh = sel.high <= thr;
  const out: number[] = [];
  for (let i = 0; i < sel.codes.length; i++) if (sel.codes[i] === 2 || (withHigh && sel.codes[i] === 1)) out.push(i);
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

/** Whether step s's outputs must choose the next step's recompute sets (the next step is cached). */
export function choosesRecompute(run: MlCacheRun, step: number): boolean {
  const following = step + 1;
  return following < run.refresh.length && !run.refresh[following];
}

/**
 * After step s, from its per-branch max logits or the engine's selection of the same rule: the next step's
 * recompute sets, chosen independently per branch over all of the branch's positions (docs/model.md
 * §6.3). Only needed when the next step is cached.
 */
export function advanceMlCache(run: MlCacheRun, step: number, perBranch: readonly Float32Array[] | readonly RecomputeSelection[] | undefined): MlCacheRun {
  if (!choosesRecompute(run, step)) return { ...run, next: undefined };
  if (!perBranch) throw new Error(`step ${step} returned no max logits for the cached step after it`);
  return {
    ...run,
    next: perBranch.map((b: Float32Array | RecomputeSelection) => (b instanceof Float32Array ? recomputePositions(b, run.cacheRatio) : selectedPositions(b, run.cacheRatio))),
  };
}
