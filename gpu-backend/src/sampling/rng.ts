// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011) for the samplers.
//
// A value depends only on (seed, stream, step, index), never on how many values were drawn before or how
// requests were batched, so a request reproduces bit-for-bit whatever else the server is doing, and a step
// can be recomputed without replaying earlier ones.
//
// Counter layout per Philox call: [floor(index/4), step, stream, 0] under key [seedLo, seedHi]; the four
// output words serve indices 4q..4q+3. Uniforms keep the top 23 bits: ((x >>> 9) + 0.5) / 2^23, which is
// exact in float32 and lies in [2^-24, 1 - 2^-24]: never 0 or 1, so log(u) and log(-log u) are finite.

/** A uint64 seed: a bigint / non-negative safe integer, or [hi, lo] uint32 words. */
export type Seed = bigint | number | readonly [number, number];

/** Named streams, so sampling and remasking noise are independent of each other. */
export const STREAMS = {
  sample: 1,
  remask: 2,
} as const;
export type StreamName = keyof typeof STREAMS;

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (exact: every partial product stays below 2^53). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** One Philox4x32-10 block: counter (c0..c3) under key (k0, k1) into `out` (4 uint32 words). */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): Uint32Array {
  c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0; k0 >>>= 0; k1 >>>= 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
  return out;
}

/** Splits a uint64 seed into [lo, hi] uint32 key words; rejects anything outside 0..2^64-1. */
export function seedWords(seed: Seed): [number, number] {
  if (typeof seed === "bigint") {
    if (seed < 0n || seed > 0xffffffffffffffffn) throw new RangeError(`seed ${seed} is not a uint64`);
    return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
  }
  if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed ${seed} is not a non-negative safe integer`);
    return [seed % 4294967296, Math.floor(seed / 4294967296)];
  }
  const [hi, lo] = seed;
  for (const w of [hi, lo]) if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new RangeError(`seed word ${w} is not a uint32`);
  return [lo, hi];
}

function streamId(stream: StreamName | number): number {
  const id = typeof stream === "number" ? stream : STREAMS[stream];
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`bad stream ${String(stream)}`);
  return id;
}

function checkCounter(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} ${v} is not a uint32`);
}

const TWO_POW_23 = 8388608;
/** Raw uint32 word to a float32 uniform in the open interval (0,1). */
export function wordToUniform(x: number): number {
  return ((x >>> 9) + 0.5) / TWO_POW_23;
}

const scratch = new Uint32Array(4);

/** The uniform at (seed, stream, step, index). */
export function uniformAt(seed: Seed, stream: StreamName | number, step: number, index: number): number {
  checkCounter("step", step);
  checkCounter("index", index);
  const [k0, k1] = seedWords(seed);
  philox4x32(Math.floor(index / 4), step, streamId(stream), 0, k0, k1, scratch);
  return wordToUniform(scratch[index & 3]);
}

/** Uniforms for indices start..start+count-1 of (seed, stream, step), identical to calling uniformAt each. */
export function uniforms(seed: Seed, stream: StreamName | number, step: number, count: number, start = 0): Float32Array {
  checkCounter("step", step);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count ${count}`);
  if (count > 0) checkCounter("index", start + count - 1);
  checkCounter("index", start);
  const [k0, k1] = seedWords(seed);
  const sid = streamId(stream);
  const out = new Float32Array(count);
  const block = new Uint32Array(4);
  let q = -1;
  for (let i = 0; i < count; i++) {
    const idx = start + i;
    const bq = Math.floor(idx / 4);
    if (bq !== q) {
      philox4x32(bq, step, sid, 0, k0, k1, block);
      q = bq;
    }
    out[i] = wordToUniform(block[idx & 3]);
  }
  return out;
}

/** Standard Gumbel(0,1) from a uniform in (0,1): -log(-log u). Finite because u is never 0 or 1. */
export function gumbel(u: number): number {
  return -Math.log(-Math.log(u));
}
