import { describe, expect, it } from "vitest";
import { keepN, maskSchedule, numTransferTokens, unmaskedPerStep } from "../../../gpu-backend/src/sampling/mask-schedule";

const KEEP_4096_64 = [
  4094, 4091, 4084, 4076, 4065, 4051, 4035, 4017, 3996, 3973, 3947, 3919, 3889, 3856, 3821, 3784, 3744, 3702, 3658, 3612, 3563, 3513, 3460,
  3405, 3348, 3289, 3229, 3166, 3101, 3034, 2966, 2896, 2824, 2750, 2675, 2598, 2519, 2439, 2358, 2275, 2191, 2105, 2018, 1930, 1841, 1751,
  1659, 1567, 1474, 1379, 1284, 1189, 1092, 995, 897, 799, 700, 601, 501, 401, 301, 200, 100, 0,
];

describe("cosine schedule (docs/model.md §3.3, §10)", () => {
  it("N=4096, T=64: every keep_n", () => {
    expect(maskSchedule(4096, 64)).toEqual(KEEP_4096_64);
    expect(Array.from({ length: 64 }, (_, s) => keepN(s, 4096, 64))).toEqual(KEEP_4096_64);
    const u = unmaskedPerStep(4096, 64);
    expect(u.slice(0, 10)).toEqual([2, 3, 7, 8, 11, 14, 16, 18, 21, 23]);
    expect(u.slice(-7)).toEqual([99, 100, 100, 100, 101, 100, 100]);
    expect(u.reduce((a, b) => a + b, 0)).toBe(4096);
  });

  it("N=4608 (768x1536), T=64", () => {
    const k = maskSchedule(4608, 64);
    expect(k.slice(0, 4)).toEqual([4606, 4602, 4595, 4585]);
    expect(k.slice(-5)).toEqual([451, 338, 226, 113, 0]);
    const u = unmaskedPerStep(4608, 64);
    expect(u.slice(0, 5)).toEqual([2, 4, 7, 10, 12]);
    expect(u.slice(-4)).toEqual([113, 112, 113, 113]);
  });

  it("N=1024, T=64", () => {
    const u = unmaskedPerStep(1024, 64);
    expect(u.slice(0, 22)).toEqual([1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 7, 7, 7, 8, 9, 9, 10, 11, 11, 11, 13, 12]);
    expect(u[63]).toBe(25);
    expect(u.length).toBe(64);
  });

  it("N=4096, T=8", () => {
    expect(maskSchedule(4096, 8)).toEqual([4017, 3784, 3405, 2896, 2275, 1567, 799, 0]);
    expect(unmaskedPerStep(4096, 8)).toEqual([79, 233, 379, 509, 621, 708, 768, 799]);
  });

  it("N=256, T=64: the L-1 clamp commits one per step where keep_n stalls", () => {
    expect([0, 1, 2, 3].map((s) => keepN(s, 256, 64))).toEqual([255, 255, 255, 254]);
    expect(maskSchedule(256, 64).slice(0, 5)).toEqual([255, 254, 253, 252, 251]);
    for (const c of unmaskedPerStep(256, 64)) expect(c).toBeGreaterThanOrEqual(1);
  });

  it("N=4, T=10 finishes after 4 steps", () => {
    expect(maskSchedule(4, 10)).toEqual([3, 2, 1, 0]);
  });

  it("keep_n is at least 1 before the last step and 0 at it", () => {
    expect(keepN(0, 1, 64)).toBe(1);
    expect(keepN(63, 4096, 64)).toBe(0);
    expect(() => keepN(64, 4096, 64)).toThrow();
  });
});

describe("LLaDA get_num_transfer_tokens (docs/model.md §10)", () => {
  it("golden counts", () => {
    expect(numTransferTokens(32, 10)).toEqual([4, 4, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(numTransferTokens(32, 32)).toEqual(Array(32).fill(1));
    expect(numTransferTokens(256, 32)).toEqual(Array(32).fill(8));
    expect(numTransferTokens(3, 5)).toEqual([1, 1, 1, 0, 0]);
  });
});
