// Reads and writes the safetensors format (8-byte little-endian header length, JSON header, raw tensor
// bytes). Reading only parses the header and returns byte ranges, so the graph builder can reference a
// 16 GB checkpoint's bytes as ONNX external data instead of loading them.

import { open, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bf16ToFloat32, float32ToBf16, float32ToFp16, fp16ToFloat32 } from "../lib/numeric";

export type SafetensorsDType = "F32" | "F16" | "BF16" | "I64" | "I32" | "U8" | "I8" | "F64" | "BOOL";

export interface SafetensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** The file holding the tensor. */
  file: string;
  /** Absolute byte offset of the tensor data inside `file`. */
  offset: number;
  length: number;
}

export const SAFETENSORS_DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, I8: 1, F64: 8, BOOL: 1,
};

/** Parses one .safetensors header. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorEntry[]> {
  const fh = await open(file, "r");
  try {
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > 100 * 1024 * 1024) throw new Error(`${file}: safetensors header of ${headerLen} bytes is implausible`);
    const hb = Buffer.alloc(headerLen);
    await fh.read(hb, 0, headerLen, 8);
    const header = JSON.parse(hb.toString("utf8")) as Record<string, { dtype: SafetensorsDType; shape: number[]; data_offsets: [number, number] }>;
    const base = 8 + headerLen;
    return Object.entries(header)
      .filter(([k]) => k !== "__metadata__")
      .map(([name, e]) => ({
        name,
        dtype: e.dtype,
        shape: e.shape,
        file,
        offset: base + e.data_offsets[0],
        length: e.data_offsets[1] - e.data_offsets[0],
      }));
  } finally {
    await fh.close();
  }
}

/** All tensors of a checkpoint directory (single file or sharded `*.safetensors`), by name. */
export async function readCheckpointIndex(dir: string): Promise<Map<string, SafetensorEntry>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".safetensors")).sort();
  if (files.length === 0) throw new Error(`no .safetensors files in ${dir}`);
  const out = new Map<string, SafetensorEntry>();
  for (const f of files) for (const e of await readSafetensorsHeader(join(dir, f))) out.set(e.name, e);
  return out;
}

/** Loads one tensor's bytes (for small models and tests; large weights should stay on disk). */
export async function readTensorBytes(e: SafetensorEntry): Promise<Uint8Array> {
  const fh = await open(e.file, "r");
  try {
    const buf = new Uint8Array(e.length);
    await fh.read(buf, 0, e.length, e.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: number[];
  data: ArrayBufferView;
}

/** Writes a single-file safetensors checkpoint (tiny synthetic checkpoints for tests and dev models). */
export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const expected = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`${name}: ${t.data.byteLength} bytes for shape [${t.shape}] ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // align the data section
  const hb = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + hb.length + offset);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let pos = 8 + hb.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  await writeFile(file, out);
}

/** A float tensor's little-endian bytes (F32, F16, BF16 or F64) as fp32, whatever dtype a checkpoint stores. */
export function floatsFromTensorBytes(bytes: Uint8Array, dtype: SafetensorsDType, name: string): Float32Array {
  const copy = bytes.slice(); // typed-array views need an aligned offset
  switch (dtype) {
    case "F32":
      return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    case "F16":
      return fp16ToFloat32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    case "BF16":
      return bf16ToFloat32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    case "F64":
      return Float32Array.from(new Float64Array(copy.buffer, 0, copy.byteLength / 8));
    default:
      throw new Error(`${name}: dtype ${dtype} is not a float type`);
  }
}

/** fp32 values as the data of an F32, F16 or BF16 tensor (round to nearest even, as torch's .to()). */
export function tensorDataFromFloats(data: Float32Array, dtype: "F32" | "F16" | "BF16"): Float32Array | Uint16Array {
  if (dtype === "F32") return data;
  return dtype === "F16" ? float32ToFp16(data) : float32ToBf16(data);
}

/** Reads a small safetensors file fully (dev models and tests). */
export async function readSafetensorsFile(file: string): Promise<Map<string, { entry: SafetensorEntry; bytes: Uint8Array }>> {
  const entries = await readSafetensorsHeader(file);
  const all = await readFile(file);
  return new Map(entries.map((e) => [e.name, { entry: e, bytes: new Uint8Array(all.buffer, all.byteOffset + e.offset, e.length) }]));
}
