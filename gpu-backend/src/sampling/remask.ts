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
  // The k-th lowest score by selection in linear time (sorting 4,096 indices with a comparator was the
  // orchestrator's hottest function per step); cells strictly below it are in, and the ties at it are taken
  // by lower position until there are k.
  const threshold = kthSmallest(scores.slice(), k - 1);
  if (Number.isNaN(threshold)) return selectRemaskBySort(scores, positions, k);
  const selected = new Uint8Array(m);
  let below = 0;
  const ties: number[] = [];
  for (let i = 0; i < m; i++) {
    const s = scores[i];
    if (s < threshold) {
      selected[i] = 1;
      below++;
    } else if (s === threshold) ties.push(i);
  }
  if (ties.length > k - below) ties.sort((a, b) => positions[a] - positions[b]);
  for (let t = 0; t < k - below; t++) selected[ties[t]] = 1;
  const out = new Int32Array(k);
  for (let i = 0, j = 0; i < m; i++) if (selected[i]) out[j++] = i;
  return out;
}

/** The value of rank `r` (0-based) in ascending order; reorders `a`. Hoare quickselect, median-of-three pivot. */
function kthSmallest(a: Float64Array, r: number): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== a[i]) return NaN;
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    // median of three as the pivot value
    let x = a[lo], y = a[mid], z = a[hi];
    if (x > y) [x, y] = [y, x];
    if (y > z) [y, z] = [z, y];
    if (x > y) [x, y] = [y, x];
    const pivot = y;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r];
  }
  return a[r];
}

/** The plain definition: order by (score, position), take k. Kept for scores with NaNs. */
function selectRemaskBySort(scores: Float64Array, positions: Int32Array, k: number): Int32Array {
  const m = scores.length;
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
