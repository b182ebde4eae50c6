// Which freshly sampled image cells go back to MASK after a step (the reference's mask_by_random_topk,
// docs/model.md §3.4): every masked cell gets its sampled code, then the k lowest-scoring cells are masked
// again, score = log(max(conf, 1e-20)) + temperature * Gumbel. The reference's strict "< cutoff" re-masks
// exactly k only when scores are distinct; we sort by (score, position) so it is always exactly k and
// independent of sort stability.

import { gumbel } from "./rng";

/** Remask scores of the M slots; `u` are uniforms in (0,1) from the RNG's "remask" stream. */
export function remaskScores(confidence: Float32Array, temperature: number, u: Float32Array): Float64Array {
  if (u.length !== confidence.length) throw new RangeError(`${u.length} uniforms for ${confidence.length} slots`);
  const out = new Float64Array(confidence.length);
  for (let m = 0; m < confidence.length; m++) {
    const c = confidence[m];
    // NaN confidence (a broken engine) scores lowest, so the cell is re-sampled rather than trusted.
    const logc = Number.isNaN(c) ? -Infinity : Math.log(Math.max(c, 1e-20));
    out[m] = temperature === 0 ? logc : logc + temperature * gumbel(u[m]);
  }
  return out;
}

/**
 * Slot indices (ascending) to re-mask: the `keep` lowest scores, ties broken by lower sequence position.
 * `keep` is clamped to [0, M-1] as the reference does, so each step commits at least one cell.
 */
export function selectRemask(scores: Float64Array, positions: Int32Array, keep: number): Int32Array {
  const m = scores.length;
  if (positions.length !== m) throw new RangeError(`${positions.length} positions for ${m} scores`);
  const k = Math.max(0, Math.min(keep, m - 1));
  if (k === 0) return new Int32Array(0);
  const order = new Int32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  order.sort((a, b) => {
    const sa = scores[a], sb = scores[b];
    if (sa < sb) return -1;
    if (sa > sb) return 1;
    return positions[a] - positions[b];
  });
  return order.subarray(0, k).slice().sort();
}
