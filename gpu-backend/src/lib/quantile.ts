// Where torch.quantile's linear interpolation reads a sorted list: the two order statistics it blends and
// the blend. Shared by the ML-Cache rule (sampling/ml-cache.ts), which interpolates over values it holds,
// and the cached engine call (engine/cached-call.ts), which asks the engine for those two order statistics
// so that the values themselves need not cross the wire. Both must agree to the last bit, hence one
// function, computed in float64.

export interface QuantileRanks {
  /** 0-based ranks in ascending order: sorted[lo] and sorted[hi] (hi = lo or lo + 1). */
  lo: number;
  hi: number;
  /** quantile = sorted[lo] + (sorted[hi] - sorted[lo]) * frac. */
  frac: number;
}

export function quantileRanks(n: number, q: number): QuantileRanks {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`quantile of ${n} values`);
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q}`);
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  return { lo, hi: Math.ceil(pos), frac: pos - lo };
}

/** The interpolated quantile from its two order statistics, exactly as torch.quantile (float64). */
export function interpolateQuantile(low: number, high: number, frac: number): number {
  return low + (high - low) * frac;
}
