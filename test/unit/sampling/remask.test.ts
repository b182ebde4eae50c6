import { describe, expect, it } from "vitest";
import { remaskScores, selectRemask } from "../../../gpu-backend/src/sampling/remask";
import { gumbel } from "../../../gpu-backend/src/sampling/rng";

describe("remask selection", () => {
  it("temperature 0: re-masks exactly the k least confident", () => {
    const conf = Float32Array.of(0.9, 0.1, 0.5, 0.05, 0.7);
    const pos = Int32Array.of(10, 11, 12, 13, 14);
    const s = remaskScores(conf, 0, new Float32Array(5).fill(0.5));
    expect(Array.from(selectRemask(s, pos, 2))).toEqual([1, 3]);
    expect(Array.from(selectRemask(s, pos, 0))).toEqual([]);
  });

  it("clamps k to M-1 so every step commits at least one", () => {
    const s = remaskScores(Float32Array.of(0.2, 0.3, 0.4), 0, new Float32Array(3).fill(0.5));
    expect(selectRemask(s, Int32Array.of(0, 1, 2), 10).length).toBe(2);
    expect(selectRemask(s, Int32Array.of(0, 1, 2), 10)).not.toContain(2);
  });

  it("ties break by position: exactly k, lowest positions first", () => {
    const conf = new Float32Array(6).fill(0.25);
    const pos = Int32Array.of(50, 10, 40, 20, 30, 60);
    const s = remaskScores(conf, 0, new Float32Array(6).fill(0.5));
    expect(Array.from(selectRemask(s, pos, 3))).toEqual([1, 3, 4]); // positions 10, 20, 30
  });

  it("equals ordering every slot by (score, position) and taking k, with many ties and shuffled positions", () => {
    let x = 99;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 50; trial++) {
      const m = 1 + Math.floor(rand() * 300);
      const scores = Float64Array.from({ length: m }, () => (rand() < 0.5 ? Math.floor(rand() * 5) : rand()) - (rand() < 0.05 ? Infinity : 0));
      const pos = Int32Array.from({ length: m }, (_, i) => i);
      for (let i = m - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [pos[i], pos[j]] = [pos[j], pos[i]];
      }
      const keep = Math.floor(rand() * (m + 2));
      const k = Math.max(0, Math.min(keep, m - 1));
      const expected = Array.from({ length: m }, (_, i) => i)
        .sort((a, b) => scores[a] - scores[b] || pos[a] - pos[b])
        .slice(0, k)
        .sort((a, b) => a - b);
      expect(Array.from(selectRemask(scores, pos, keep))).toEqual(expected);
    }
  });

  it("score = log(max(conf, 1e-20)) + temperature * Gumbel(u)", () => {
    const u = Float32Array.of(0.3, 0.9);
    const s = remaskScores(Float32Array.of(0.5, 0), 2, u);
    expect(s[0]).toBeCloseTo(Math.log(0.5) + 2 * gumbel(u[0]), 12);
    expect(s[1]).toBeCloseTo(Math.log(1e-20) + 2 * gumbel(u[1]), 12);
  });

  it("noise can flip the order at temperature > 0", () => {
    const conf = Float32Array.of(0.5, 0.45);
    // u near 1 gives a large Gumbel for slot 0; near 0 a very negative one for slot 1... then slot 1 is lower.
    const a = selectRemask(remaskScores(conf, 1, Float32Array.of(0.01, 0.99)), Int32Array.of(0, 1), 1);
    expect(Array.from(a)).toEqual([0]);
    const b = selectRemask(remaskScores(conf, 1, Float32Array.of(0.99, 0.01)), Int32Array.of(0, 1), 1);
    expect(Array.from(b)).toEqual([1]);
  });

  it("NaN confidence is treated as least confident", () => {
    const s = remaskScores(Float32Array.of(0.2, Number.NaN, 0.1), 0, new Float32Array(3).fill(0.5));
    expect(Array.from(selectRemask(s, Int32Array.of(0, 1, 2), 1))).toEqual([1]);
  });
});
