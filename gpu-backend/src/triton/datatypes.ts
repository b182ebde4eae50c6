// Triton datatypes: the API strings, element sizes, the typed arrays that carry them in JavaScript, and the
// mapping to the model-config enum (inference.DataType). Reference: docs/triton.md, "Wire format the client relies on".

export const DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
  "BF16",
] as const;

export type DataType = (typeof DATATYPES)[number];

/** The typed array each datatype decodes to. FP16 and BF16 stay raw bit patterns (see codec conversions). */
export interface TensorDataMap {
  BOOL: Uint8Array; // 0 or 1 per element
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array; // IEEE half bits
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: Uint8Array[]; // one byte string per element
  BF16: Uint16Array; // upper 16 bits of an IEEE float32
}

/** What an input tensor may carry: the exact typed array (sent without copying) or convenient plain values. */
export interface InputDataMap {
  BOOL: Uint8Array | readonly boolean[] | readonly number[];
  UINT8: Uint8Array | Uint8ClampedArray | readonly number[];
  UINT16: Uint16Array | readonly number[];
  UINT32: Uint32Array | readonly number[];
  UINT64: BigUint64Array | readonly (number | bigint)[];
  INT8: Int8Array | readonly number[];
  INT16: Int16Array | readonly number[];
  INT32: Int32Array | readonly number[];
  INT64: BigInt64Array | readonly (number | bigint)[];
  /** Uint16Array = raw half bits; Float32Array or numbers are converted (round to nearest even). */
  FP16: Uint16Array | Float32Array | readonly number[];
  FP32: Float32Array | readonly number[];
  FP64: Float64Array | readonly number[];
  /** Strings are UTF-8 encoded. */
  BYTES: readonly (string | Uint8Array)[];
  /** Uint16Array = raw bf16 bits; Float32Array or numbers are converted (round to nearest even). */
  BF16: Uint16Array | Float32Array | readonly number[];
}

export interface Tensor<D extends DataType = DataType> {
  datatype: D;
  shape: number[];
  data: TensorDataMap[D];
}

/** A tensor of any datatype, discriminated by `datatype` (narrowing `datatype` narrows `data`). */
export type AnyTensor = { [D in DataType]: Tensor<D> }[DataType];

export interface InputTensorOf<D extends DataType> {
  datatype: D;
  shape: readonly number[];
  data: InputDataMap[D];
}

/** An input tensor: `{ datatype: "FP32", shape: [2, 3], data: new Float32Array(6) }`. */
export type InputTensor = { [D in DataType]: InputTensorOf<D> }[DataType];

/** Bytes per element; 0 for BYTES (variable: 4-byte length prefix plus the bytes). */
export const ELEMENT_SIZE: Record<DataType, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 0,
  BF16: 2,
};

type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | BigUint64ArrayConstructor
  | BigInt64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

export const TYPED_ARRAY: Record<Exclude<DataType, "BYTES">, TypedArrayCtor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
  BF16: Uint16Array,
};

export function isDataType(s: string): s is DataType {
  return (DATATYPES as readonly string[]).includes(s);
}

/** Model-config enum name (TYPE_FP32, TYPE_STRING...) for an API datatype string. */
export function configTypeOf(dt: DataType): string {
  return dt === "BYTES" ? "TYPE_STRING" : `TYPE_${dt}`;
}

/** API datatype string for a model-config enum name; "INVALID" for TYPE_INVALID or anything unknown. */
export function datatypeOfConfig(t: string): DataType | "INVALID" {
  if (t === "TYPE_STRING") return "BYTES";
  const s = t.startsWith("TYPE_") ? t.slice(5) : t;
  return s !== "BYTES" && isDataType(s) ? s : "INVALID";
}

/** Number of elements of a shape (1 for a scalar shape []). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
