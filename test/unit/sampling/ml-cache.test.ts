import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { quantileRanks } from "../../../gpu-backend/src/lib/quantile";
import {
  advanceMlCache,
  initMlCache,
  mlCacheRefreshSteps,
  quantileLinear,
  recomputeAt,
  recomputeMask,
  recomputePositions,
  selectedPositions,
} from "../../../gpu-backend/src/sampling/ml-cache";

describe("ML-Cache schedule (docs/model.md §6, §10)", () => {
  it("T=64 with 0.9/0.3/5: 28 refresh steps, 36 cached", () => {
    const r = mlCacheRefreshSteps(64);
    const refresh = r.flatMap((x, s) => (x ? [s] : []));
    expect(refresh).toEqual([...Array.from({ length: 20 }, (_, i) => i), 24, 29, 34, 39, 44, 49, 54, 59]);
    expect(r.filter((x) => !x).length).toBe(36);
  });

  it("recomputes floor(0.1 (L-1)) + 1 positions for distinct max logits (L=4264 -> 427)", () => {
    const L = 4264;
    const m = Float32Array.from({ length: L }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
    const mask = recomputeMask(m, 0.9);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(427);
    // The recomputed ones are the least confident.
    let maxIn = -Infinity, minOut = Infinity;
    mask.forEach((v, i) => (v ? (maxIn = Math.max(maxIn, m[i])) : (minOut = Math.min(minOut, m[i]))));
    expect(maxIn).toBeLessThan(minOut);
  });

  it("quantile interpolates linearly like torch.quantile", () => {
    expect(quantileLinear([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantileLinear([10, 0], 0.1)).toBeCloseTo(1, 12);
    expect(quantileLinear([7], 0.3)).toBe(7);
  });

  it("validates parameters", () => {
    expect(() => mlCacheRefreshSteps(64, { cacheRatio: 1, warmupRatio: 0.3, refreshInterval: 5 })).toThrow(InvalidArgument);
    expect(() => mlCacheRefreshSteps(64, { cacheRatio: 0.9, warmupRatio: 0.3, refreshInterval: 0 })).toThrow(/refresh_interval/);
  });

  it("carries each branch's recompute set from one step's max logits to the next cached step", () => {
    let run = initMlCache(64);
    const logits = (s: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 43758.5453 % 1);
    let cached = 0;
    for (let s = 0; s < 64; s++) {
      const sets = recomputeAt(run, s);
      if (run.refresh[s]) expect(sets).toBeUndefined();
      else {
        cached++;
        // Chosen independently per branch, each over its own length.
        expect(sets?.map((x) => Array.from(x))).toEqual([Array.from(recomputePositions(logits(s - 1, 120), 0.9)), Array.from(recomputePositions(logits(s - 1 + 0.5, 90), 0.9))]);
      }
      run = advanceMlCache(run, s, [logits(s, 120), logits(s + 0.5, 90)]);
    }
    expect(cached).toBe(36);
    // A cached step needs the max logits of the step before it.
    expect(() => advanceMlCache(initMlCache(64), 19, undefined)).toThrow(/max logits/);
    expect(() => recomputeAt({ ...initMlCache(64), next: undefined }, 20)).toThrow(/previous step/);
  });

  it("the engine's selection (a code per position, two order statistics) gives exactly recomputePositions, ties and rounding edges included", () => {
    // The engine's encoding (contract.ts recompute_codes / quantile_values) from the values, and the rule
    // over the values themselves, on lists full of ties and at lengths where q (n - 1) falls within 1e-16 of
    // an integer (cache ratio 0.9 and n - 1 a multiple of 10), where the interpolated threshold rounds up to
    // sorted[hi] and the positions equal to it are in.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let edge = 0;
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + (trial % 61);
      // logit-like magnitudes: the threshold's rounding error (~|x| 1e-16) can exceed (high - low) (1 - frac)
      const values = Float32Array.from({ length: n }, () => 8 + Math.floor(rand() * 7) / 4);
      const sorted = Float32Array.from(values).sort();
      for (const ratio of [0.9, 0.95, 0.75, 0.5, 0.3, 0]) {
        const { lo, hi } = quantileRanks(n, 1 - ratio);
        const [low, high] = [sorted[lo], sorted[hi]];
        const codes = Uint8Array.from(values, (x) => (x <= low ? 2 : x <= high ? 1 : 0));
        const got = Array.from(selectedPositions({ codes, low, high }, ratio));
        expect(got, `n ${n} ratio ${ratio}`).toEqual(Array.from(recomputePositions(values, ratio)));
        if (got.some((i) => codes[i] === 1)) edge++;
      }
    }
    expect(edge).toBeGreaterThan(0); // the rounding edge did occur
  });
});
