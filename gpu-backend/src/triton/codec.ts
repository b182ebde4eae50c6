// Tensor codecs for Triton's raw contents: little-endian, row-major, no padding; BOOL one byte per element;
// BYTES as (uint32 LE length, bytes) per element. Fixed-size types are sent and received as views of the
// same memory (no per-element loops); only FP16/BF16 conversions (lib/numeric.ts) and BYTES framing walk the elements.

import {
  ELEMENT_SIZE,
  TYPED_ARRAY,
  elementCount,
  type DataType,
  type InputDataMap,
  type InputTensor,
  type Tensor,
  type TensorDataMap,
} from "./datatypes";
import { bf16ToFloat32, float32ToBf16, float32ToFp16, fp16ToFloat32 } from "../lib/numeric";

/** Whether this machine stores numbers little-endian (every platform Node ships on today). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Byte-swaps a copy of `b` in place for big-endian hosts (no-op copy avoidance on little-endian). */
function toWireOrder(b: Uint8Array, elementSize: number): Uint8Array {
  if (HOST_LITTLE_ENDIAN || elementSize === 1) return b;
  const copy = Buffer.from(b);
  if (elementSize === 2) copy.swap16();
  else if (elementSize === 4) copy.swap32();
  else copy.swap64();
  return copy;
}

// ---- BYTES ----------------------------------------------------------------------------------------------

/** Serializes byte strings as Triton's BYTES tensor: per element a uint32 LE length, then the bytes. */
export function serializeBytes(items: readonly (string | Uint8Array)[]): Buffer {
  const parts = items.map((x) => (typeof x === "string" ? utf8.encode(x) : x));
  let total = 0;
  for (const p of parts) total += 4 + p.byteLength;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.byteLength, pos);
    out.set(p, pos + 4);
    pos += 4 + p.byteLength;
  }
  return out;
}

export class BytesFormatError extends Error {
  override name = "BytesFormatError";
}

/**
 * Splits a BYTES tensor into its elements (views into `buf`, no copies). With `expected`, the element count
 * must match exactly. Throws BytesFormatError on a truncated length prefix or element.
 */
export function deserializeBytes(buf: Uint8Array, expected?: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos < buf.byteLength) {
    if (buf.byteLength - pos < 4) {
      throw new BytesFormatError(`incomplete string length indicator: ${buf.byteLength - pos} bytes at offset ${pos}`);
    }
    const len = dv.getUint32(pos, true);
    pos += 4;
    if (pos + len > buf.byteLength) throw new BytesFormatError(`string element ${out.length} runs past the end of the tensor`);
    out.push(buf.subarray(pos, pos + len));
    pos += len;
  }
  if (expected !== undefined && out.length !== expected) {
    throw new BytesFormatError(`expected ${expected} string elements, got ${out.length}`);
  }
  return out;
}

/** Decodes BYTES elements as UTF-8 strings. */
export function bytesToStrings(items: readonly Uint8Array[]): string[] {
  return items.map((b) => utf8Decoder.decode(b));
}

// ---- tensors <-> raw bytes ------------------------------------------------------------------------------

export class TensorDataError extends Error {
  override name = "TensorDataError";
}

function isView(x: unknown): x is ArrayBufferView {
  return ArrayBuffer.isView(x);
}

/**
 * Encodes an input tensor's data as Triton raw contents. A typed array of the datatype's own kind is
 * returned as a view of the same memory (no copy) on little-endian hosts.
 */
export function encodeTensorData<D extends DataType>(datatype: D, data: InputDataMap[D]): Uint8Array {
  if (datatype === "BYTES") return serializeBytes(data as InputDataMap["BYTES"]);
  const size = ELEMENT_SIZE[datatype];
  if ((datatype === "FP16" || datatype === "BF16") && !(data instanceof Uint16Array)) {
    const src = data as Float32Array | readonly number[];
    const bits = datatype === "FP16" ? float32ToFp16(src) : float32ToBf16(src);
    return toWireOrder(bytesOf(bits), 2);
  }
  const Ctor = TYPED_ARRAY[datatype as Exclude<DataType, "BYTES">];
  if (data instanceof Ctor || (datatype === "UINT8" && data instanceof Uint8ClampedArray)) {
    return toWireOrder(bytesOf(data as ArrayBufferView), size);
  }
  if (isView(data) && !(data instanceof DataView)) {
    // A typed array of another kind: convert element by element.
    return toWireOrder(bytesOf(convertArray(datatype as Exclude<DataType, "BYTES">, Array.from(data as unknown as ArrayLike<number | bigint>))), size);
  }
  if (Array.isArray(data)) return toWireOrder(bytesOf(convertArray(datatype as Exclude<DataType, "BYTES">, data as readonly unknown[])), size);
  throw new TensorDataError(`unsupported data for a ${datatype} tensor`);
}

function convertArray(datatype: Exclude<DataType, "BYTES">, values: readonly unknown[]): ArrayBufferView {
  const Ctor = TYPED_ARRAY[datatype];
  if (Ctor === BigInt64Array || Ctor === BigUint64Array) {
    return (Ctor as BigInt64ArrayConstructor).from(values as readonly (number | bigint)[], (v) => BigInt(v));
  }
  if (datatype === "BOOL") return Uint8Array.from(values as readonly (boolean | number)[], (v) => (v ? 1 : 0));
  return (Ctor as Float64ArrayConstructor).from(values as readonly (number | bigint)[], (v) => Number(v));
}

/** Byte size of raw contents for a fixed-size datatype and shape (undefined for BYTES). */
export function rawByteSize(datatype: DataType, shape: readonly number[]): number | undefined {
  return datatype === "BYTES" ? undefined : ELEMENT_SIZE[datatype] * elementCount(shape);
}

/**
 * Decodes raw contents into the datatype's typed array. If `raw` is suitably aligned the result is a view of
 * the same memory; otherwise one aligned copy is made. Throws TensorDataError if the size does not match.
 */
export function decodeTensorData<D extends DataType>(datatype: D, shape: readonly number[], raw: Uint8Array): TensorDataMap[D] {
  const count = elementCount(shape);
  if (datatype === "BYTES") {
    try {
      return deserializeBytes(raw, count) as TensorDataMap[D];
    } catch (e) {
      throw new TensorDataError((e as Error).message);
    }
  }
  const size = ELEMENT_SIZE[datatype];
  if (raw.byteLength !== count * size) {
    throw new TensorDataError(`${datatype} tensor of shape [${shape.join(",")}] needs ${count * size} bytes, got ${raw.byteLength}`);
  }
  let bytes = raw;
  if (!HOST_LITTLE_ENDIAN && size > 1) bytes = toWireOrder(raw, size);
  else if (bytes.byteOffset % size !== 0) bytes = new Uint8Array(raw); // aligned copy
  const Ctor = TYPED_ARRAY[datatype as Exclude<DataType, "BYTES">];
  return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, count) as unknown as TensorDataMap[D];
}

/** Encodes a whole input tensor: its raw bytes plus a checked shape. */
export function encodeInputTensor(t: InputTensor): { shape: number[]; raw: Uint8Array } {
  const shape = t.shape.map((d) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new TensorDataError(`invalid dimension ${d} in shape [${t.shape.join(",")}]`);
    return d;
  });
  const raw = encodeTensorData(t.datatype, t.data as InputDataMap[typeof t.datatype]);
  const expected = rawByteSize(t.datatype, shape);
  if (expected !== undefined && raw.byteLength !== expected) {
    throw new TensorDataError(
      `${t.datatype} data has ${raw.byteLength / ELEMENT_SIZE[t.datatype]} elements but shape [${shape.join(",")}] needs ${elementCount(shape)}`,
    );
  }
  if (t.datatype === "BYTES" && t.data.length !== elementCount(shape)) {
    throw new TensorDataError(`BYTES data has ${t.data.length} elements but shape [${shape.join(",")}] needs ${elementCount(shape)}`);
  }
  return { shape, raw };
}

/** Any numeric tensor as float32 (FP16/BF16 decoded exactly; 64-bit integers via Number()). */
export function toFloat32(t: Tensor): Float32Array {
  switch (t.datatype) {
    case "FP32":
      return t.data as Float32Array;
    case "FP16":
      return fp16ToFloat32(t.data as Uint16Array);
    case "BF16":
      return bf16ToFloat32(t.data as Uint16Array);
    case "BYTES":
      throw new TensorDataError("BYTES tensors have no float32 view");
    case "INT64":
    case "UINT64":
      return Float32Array.from(t.data as BigInt64Array as unknown as ArrayLike<bigint>, (v) => Number(v));
    default:
      return Float32Array.from(t.data as ArrayLike<number>);
  }
}
