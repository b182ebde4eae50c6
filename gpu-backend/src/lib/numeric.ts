// Number formats our tensors use that JavaScript has no typed array for. bfloat16 and IEEE half travel as
// their 16-bit patterns in a Uint16Array (weights, Triton FP16/BF16 tensors). int64 tensors (token ids,
// VQ codes) hold values that fit in int32, so they are read and written through an Int32Array view of the
// same buffer, low word then sign word: about 10x faster than a BigInt per element. The views assume a
// little-endian host, as every platform Node ships on is (triton/codec.ts checks it for the wire).

// ---- bfloat16 -------------------------------------------------------------------------------------------

/** float32 values to bfloat16 bits (upper half of the float32), rounding to nearest even; NaN stays NaN. */
export function float32ToBf16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const src = values instanceof Float32Array ? values : Float32Array.from(values);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < out.length; i++) {
    const u = bits[i];
    // Rounding a NaN could carry its payload into the exponent (an Inf) or the sign (-0): keep it quiet instead.
    if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) out[i] = (u >>> 16) | 0x40;
    else out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bits to float32 (exact). */
export function bf16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o[i] = bits[i] << 16;
  return out;
}

// ---- IEEE half ------------------------------------------------------------------------------------------

function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A half subnormal: the implicit bit joins the mantissa, which shifts further right the smaller it is.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  // A carry out of the mantissa rounds into the exponent, up to Inf: the bit layout makes that right.
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++;
  return sign | half;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 values to IEEE half bits, rounding to nearest even (overflow gives ±Inf, NaN stays NaN). */
export function float32ToFp16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < out.length; i++) out[i] = f32BitsToF16(bits[i]);
  } else {
    for (let i = 0; i < out.length; i++) {
      scratchF32[0] = values[i];
      out[i] = f32BitsToF16(scratchU32[0]);
    }
  }
  return out;
}

let halfTable: Float32Array | undefined;

/** Every half value as float32, built on first use (256 KB; a lookup beats decoding the bits each time). */
function fp16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = (sign ? -1 : 1) * mant * 5.960464477539063e-8; // 2^-24
    else if (exp === 0x1f) bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    else bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  halfTable = t;
  return t;
}

/** IEEE half bits to float32 (exact). */
export function fp16ToFloat32(bits: Uint16Array): Float32Array {
  const t = fp16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < out.length; i++) out[i] = t[bits[i]];
  return out;
}

// ---- int64 through Int32Array views ---------------------------------------------------------------------

/** The two 32-bit words of every element (low word at 2i, high word at 2i + 1): a view, no copy. */
export function int64Words(values: BigInt64Array): Int32Array {
  return new Int32Array(values.buffer, values.byteOffset, values.length * 2);
}

/**
 * int64 values that fit in int32 (ids, codes) as an Int32Array: the low words, so larger values wrap. An
 * Int32Array (what a caller may already hold) comes back as is, without a copy.
 */
export function int64ToInt32(values: BigInt64Array | Int32Array): Int32Array {
  if (values instanceof Int32Array) return values;
  const words = int64Words(values);
  const out = new Int32Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = words[2 * i];
  return out;
}

/** int32 values as a new BigInt64Array (sign-extended). */
export function int32ToInt64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  const words = int64Words(out);
  for (let i = 0; i < values.length; i++) writeInt64(words, i, values[i]);
  return out;
}

/** Writes an int32-range integer as element `index` of an int64 tensor seen through `int64Words`. */
export function writeInt64(words: Int32Array, index: number, value: number): void {
  words[2 * index] = value | 0;
  words[2 * index + 1] = value < 0 ? -1 : 0;
}
