// bf16/fp16 conversion and int64 tensors through Int32Array views: exact round trips, round to nearest
// even at every tie, NaN and Inf kept apart, subnormals, and negative int64 values.

import { describe, expect, it } from "vitest";
import {
  bf16ToFloat32,
  float32ToBf16,
  float32ToFp16,
  fp16ToFloat32,
  int32ToInt64,
  int64ToInt32,
  int64Words,
  writeInt64,
} from "../../../gpu-backend/src/lib/numeric";

/** float32 values from their bit patterns. */
const fromBits = (...bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const isNaN16 = (h: number, expMask: number, mantMask: number) => (h & expMask) === expMask && (h & mantMask) !== 0;

/** Decodes every 16-bit pattern and encodes it back: NaNs stay NaN, every other pattern comes back as it was. */
function roundTripEveryPattern(
  decode: (bits: Uint16Array) => Float32Array,
  encode: (values: Float32Array) => Uint16Array,
  expMask: number,
  mantMask: number,
): Float32Array {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const f = decode(all);
  const back = encode(f);
  for (let i = 0; i < 65536; i++) {
    if (isNaN16(i, expMask, mantMask)) expect(Number.isNaN(f[i])).toBe(true);
    else if (back[i] !== i) throw new Error(`${i.toString(16)} came back as ${back[i].toString(16)}`);
  }
  return f;
}

describe("bfloat16", () => {
  it("round-trips every bf16 pattern exactly through float32 (NaNs stay NaN)", () => {
    roundTripEveryPattern(bf16ToFloat32, float32ToBf16, 0x7f80, 0x7f);
  });

  it("rounds to nearest, ties to even, into the exponent and up to Inf", () => {
    const b = float32ToBf16(fromBits(0x40408000, 0x40418000, 0x40417fff, 0x407fffff, 0x7f7fffff, 0xff7f8000, 0x7f7f7fff));
    expect(Array.from(b)).toEqual([0x4040, 0x4042, 0x4041, 0x4080, 0x7f80, 0xff80, 0x7f7f]);
    expect(Array.from(float32ToBf16([-0, Infinity, -Infinity]))).toEqual([0x8000, 0x7f80, 0xff80]);
  });

  it("keeps every NaN a NaN, whatever its payload", () => {
    const b = float32ToBf16(fromBits(0x7f800001, 0x7fffffff, 0xff800001, 0x7fc00000));
    for (const h of b) expect(isNaN16(h, 0x7f80, 0x7f)).toBe(true);
    expect(b[2] & 0x8000).toBe(0x8000);
  });

  it("keeps float32 subnormals (bf16 has the same exponent range)", () => {
    const tiny = fromBits(0x00010000, 0x00008000, 0x00018000, 0x80000001);
    expect(Array.from(float32ToBf16(tiny))).toEqual([0x0001, 0x0000, 0x0002, 0x8000]);
    expect(bf16ToFloat32(Uint16Array.of(0x0001))[0]).toBe(2 ** -133);
  });
});

describe("IEEE half", () => {
  it("decodes every half exactly and encodes it back", () => {
    const f = roundTripEveryPattern(fp16ToFloat32, float32ToFp16, 0x7c00, 0x3ff);
    expect(Array.from(f.subarray(0x3c00, 0x3c02))).toEqual([1, 1 + 2 ** -10]);
    expect(Object.is(f[0x8000], -0)).toBe(true);
  });

  it("rounds ties to even, overflows to Inf, and keeps NaN payloads", () => {
    const h = float32ToFp16([2 + 2 ** -10, 2 + 3 * 2 ** -10, 65504 + 15.99, 65520, -1e9, 2 ** -24 * 1.5, 2 ** -24 * 0.5, 2 ** -24 * 0.75]);
    expect(Array.from(h)).toEqual([0x4000, 0x4002, 0x7bff, 0x7c00, 0xfc00, 0x0002, 0x0000, 0x0001]);
    const nan = float32ToFp16(fromBits(0x7f802000, 0xffc00000));
    expect(Array.from(nan)).toEqual([0x7e01, 0xfe00]);
  });

  it("turns the smallest normals into subnormals and back", () => {
    const h = float32ToFp16([2 ** -15, -(2 ** -20), 2 ** -14 - 2 ** -24]);
    expect(Array.from(h)).toEqual([0x0200, 0x8010, 0x03ff]);
    expect(Array.from(fp16ToFloat32(h))).toEqual([2 ** -15, -(2 ** -20), 2 ** -14 - 2 ** -24]);
  });
});

describe("int64 through Int32Array views", () => {
  const values = [0, 1, -1, 8191, -134548, 2 ** 31 - 1, -(2 ** 31)];

  it("widens int32 values to int64 with their sign", () => {
    const wide = int32ToInt64(Int32Array.from(values));
    expect(Array.from(wide)).toEqual(values.map(BigInt));
    expect(Array.from(int32ToInt64([-7, 7]))).toEqual([-7n, 7n]);
  });

  it("narrows int64 to int32 (low words) and passes an Int32Array through without a copy", () => {
    expect(Array.from(int64ToInt32(BigInt64Array.from(values.map(BigInt))))).toEqual(values);
    expect(Array.from(int64ToInt32(BigInt64Array.of(2n ** 32n + 5n, -(2n ** 32n) - 3n)))).toEqual([5, -3]);
    const ids = Int32Array.of(3, -4);
    expect(int64ToInt32(ids)).toBe(ids);
  });

  it("writes elements in place, also through a view that starts inside its buffer", () => {
    const backing = new BigInt64Array(6).fill(99n);
    const tensor = backing.subarray(2, 5);
    const words = int64Words(tensor);
    expect(words.length).toBe(6);
    writeInt64(words, 0, -2);
    writeInt64(words, 1, 126_336);
    writeInt64(words, 2, -(2 ** 31));
    expect(Array.from(backing)).toEqual([99n, 99n, -2n, 126_336n, -(2n ** 31n), 99n]);
    expect(Array.from(int64ToInt32(tensor))).toEqual([-2, 126_336, -(2 ** 31)]);
  });
});
