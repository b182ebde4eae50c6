// How many tokens each step commits.
//
// Image tasks: MaskGIT cosine schedule as the reference computes it (docs/model.md §3.3): after step s of T,
// keep_n(s) = max(1, floor(N cos(pi/2 (s+1)/T))) cells stay masked (0 after the last step), but every step
// commits at least one cell because the reference clamps k to M-1 (mask_by_random_topk). The reference
// computes the ratio in float32; we emulate that (Math.fround at each float32 op) so integers match.
//
// Understanding: LLaDA's get_num_transfer_tokens (docs/model.md §5.2): a block's masks spread evenly over its steps,
// the remainder going to the first steps.

const HALF_PI_F32 = Math.fround(Math.PI * 0.5);

/** Cells the reference wants still masked after step s (0-based) of T, from N masked at the start. */
export function keepN(s: number, n: number, t: number): number {
  if (!Number.isInteger(s) || !Number.isInteger(n) || !Number.isInteger(t) || t < 1 || n < 0 || s < 0 || s >= t) {
    throw new RangeError(`keepN(s=${s}, N=${n}, T=${t})`);
  }
  if (s === t - 1) return 0;
  const ratio = Math.fround(Math.cos(Math.fround(Math.fround((s + 1) / t) * HALF_PI_F32)));
  return Math.max(1, Math.floor(Math.fround(n * ratio)));
}

/**
 * Cells actually left masked after step s when M are masked before it: keep_n clamped to [0, M-1],
 * i.e. at least one commit per step while any mask remains.
 */
export function remainingAfterStep(s: number, n: number, t: number, maskedBefore: number): number {
  if (maskedBefore <= 0) return 0;
  return Math.max(0, Math.min(keepN(s, n, t), maskedBefore - 1));
}

/**
 * The whole image schedule: masks remaining after each step that runs. The run stops as soon as nothing
 * is masked (the reference's `break`), so the length is the number of steps (and engine calls) taken.
 */
export function maskSchedule(n: number, t: number): number[] {
  const out: number[] = [];
  let m = n;
  for (let s = 0; s < t && m > 0; s++) {
    m = remainingAfterStep(s, n, t, m);
    out.push(m);
  }
  return out;
}

/** Cells committed at each step of maskSchedule(n, t). Sums to n. */
export function unmaskedPerStep(n: number, t: number): number[] {
  const rem = maskSchedule(n, t);
  return rem.map((r, i) => (i === 0 ? n : rem[i - 1]) - r);
}

/** LLaDA get_num_transfer_tokens: `masks` committed over `steps` steps, evenly, remainder first. */
export function numTransferTokens(masks: number, steps: number): number[] {
  if (!Number.isInteger(masks) || masks < 0 || !Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`numTransferTokens(${masks}, ${steps})`);
  }
  const base = Math.floor(masks / steps);
  const rem = masks % steps;
  return Array.from({ length: steps }, (_, i) => base + (i < rem ? 1 : 0));
}
