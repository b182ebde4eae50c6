import { describe, expect, it } from "vitest";
import { gumbel, philox4x32, seedWords, uniformAt, uniforms, wordToUniform } from "../../../gpu-backend/src/sampling/rng";

const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, "0")).join(" ");

describe("Philox4x32-10", () => {
  it("matches the Random123 known-answer vectors", () => {
    const o = new Uint32Array(4);
    expect(hex(philox4x32(0, 0, 0, 0, 0, 0, o))).toBe("6627e8d5 e169c58d bc57ac4c 9b00dbd8");
    expect(hex(philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, o))).toBe("408f276d 41c83b0e a20bc7c6 6d5451fd");
    expect(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, o))).toBe("d16cfe09 94fdcceb 5001e420 24126ea1");
  });
});

describe("uniforms", () => {
  it("lie in the open interval (0,1), also at the extreme words, and are float32-exact", () => {
    expect(wordToUniform(0)).toBeGreaterThan(0);
    expect(wordToUniform(0xffffffff)).toBeLessThan(1);
    expect(Math.fround(wordToUniform(0xffffffff))).toBe(wordToUniform(0xffffffff));
    expect(Math.fround(wordToUniform(0))).toBe(wordToUniform(0));
    const u = uniforms(42n, "sample", 3, 10000);
    let sum = 0;
    for (const x of u) {
      expect(x > 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(sum / u.length).toBeGreaterThan(0.48);
    expect(sum / u.length).toBeLessThan(0.52);
    expect(Number.isFinite(gumbel(wordToUniform(0)))).toBe(true);
    expect(Number.isFinite(gumbel(wordToUniform(0xffffffff)))).toBe(true);
  });

  it("depend only on (seed, stream, step, index): any slice equals the pointwise values", () => {
    const all = uniforms(7n, "remask", 5, 37);
    for (let i = 0; i < 37; i++) expect(all[i]).toBe(uniformAt(7n, "remask", 5, i));
    const tail = uniforms(7n, "remask", 5, 10, 27);
    expect(Array.from(tail)).toEqual(Array.from(all.slice(27)));
    const mid = uniforms(7n, "remask", 5, 3, 2); // start not aligned to a Philox block
    expect(Array.from(mid)).toEqual(Array.from(all.slice(2, 5)));
  });

  it("differ across seed, stream, step and index", () => {
    const base = uniformAt(1n, "sample", 0, 0);
    expect(uniformAt(2n, "sample", 0, 0)).not.toBe(base);
    expect(uniformAt(1n, "remask", 0, 0)).not.toBe(base);
    expect(uniformAt(1n, "sample", 1, 0)).not.toBe(base);
    expect(uniformAt(1n, "sample", 0, 1)).not.toBe(base);
    // The high seed word matters.
    expect(uniformAt(1n << 32n, "sample", 0, 0)).not.toBe(uniformAt(0n, "sample", 0, 0));
  });

  it("accepts uint64 seeds in every spelling, rejects out-of-range ones", () => {
    expect(seedWords(0xdeadbeefcafebaben)).toEqual([0xcafebabe, 0xdeadbeef]);
    expect(seedWords([0xdeadbeef, 0xcafebabe])).toEqual([0xcafebabe, 0xdeadbeef]);
    expect(seedWords(2 ** 40 + 5)).toEqual([5, 256]);
    expect(uniformAt(2 ** 40 + 5, "sample", 0, 0)).toBe(uniformAt(BigInt(2 ** 40 + 5), "sample", 0, 0));
    expect(uniformAt(0xffffffffffffffffn, "sample", 0, 0)).toBe(uniformAt([0xffffffff, 0xffffffff], "sample", 0, 0));
    expect(() => seedWords(-1n)).toThrow();
    expect(() => seedWords(1n << 64n)).toThrow();
    expect(() => seedWords(1.5)).toThrow();
    expect(() => uniformAt(1n, "sample", -1, 0)).toThrow();
  });
});
