// Reads the graph inputs and outputs (name, element type, dims) straight from an .onnx file's protobuf,
// without loading weights: used to check generated config.pbtxt files against the models they describe,
// including 16 GB external-data models that onnxruntime should not load just for a check.

import { readFile } from "node:fs/promises";
import { ONNX_DTYPES, type OnnxDType } from "../onnx/graph-builder";

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType | `UNKNOWN(${number})`;
  /** number = fixed, string = symbolic (dim_param), null = unknown. */
  dims: Array<number | string | null>;
}

export interface OnnxIO {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  opset: number | undefined;
  /** Distinct `location` values of external-data initializers (relative to the .onnx file). */
  externalLocations: string[];
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}
  seek(pos: number): this {
    this.pos = pos;
    return this;
  }
  varint(): bigint {
    let shift = 0n;
    let result = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error("onnx: truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  }
  *fields(): Generator<{ field: number; wire: number; start: number; end: number; value?: bigint }> {
    while (this.pos < this.end) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      if (wire === 0) {
        const value = this.varint();
        yield { field, wire, start: this.pos, end: this.pos, value };
      } else if (wire === 2) {
        const len = Number(this.varint());
        const start = this.pos;
        this.pos += len;
        if (this.pos > this.end) throw new Error("onnx: truncated message");
        yield { field, wire, start, end: this.pos };
      } else if (wire === 1) this.pos += 8;
      else if (wire === 5) this.pos += 4;
      else throw new Error(`onnx: unsupported wire type ${wire}`);
    }
  }
}

const DTYPE_NAMES = new Map<number, OnnxDType>(Object.entries(ONNX_DTYPES).map(([k, v]) => [v, k as OnnxDType]));
const text = new TextDecoder();

function valueInfo(buf: Uint8Array, start: number, end: number): OnnxValueInfo {
  const info: OnnxValueInfo = { name: "", dtype: "UNKNOWN(0)", dims: [] };
  for (const f of new Reader(buf, end).seek(start).fields()) {
    if (f.field === 1 && f.wire === 2) info.name = text.decode(buf.subarray(f.start, f.end));
    if (f.field === 2 && f.wire === 2) {
      for (const t of new Reader(buf, f.end).seek(f.start).fields()) {
        if (t.field !== 1 || t.wire !== 2) continue; // tensor_type
        for (const tt of new Reader(buf, t.end).seek(t.start).fields()) {
          if (tt.field === 1 && tt.value !== undefined) {
            const n = Number(tt.value);
            info.dtype = DTYPE_NAMES.get(n) ?? `UNKNOWN(${n})`;
          }
          if (tt.field === 2 && tt.wire === 2) {
            for (const d of new Reader(buf, tt.end).seek(tt.start).fields()) {
              if (d.field !== 1 || d.wire !== 2) continue;
              let dim: number | string | null = null;
              for (const dv of new Reader(buf, d.end).seek(d.start).fields()) {
                if (dv.field === 1 && dv.value !== undefined) dim = Number(BigInt.asIntN(64, dv.value));
                if (dv.field === 2 && dv.wire === 2) dim = text.decode(buf.subarray(dv.start, dv.end));
              }
              info.dims.push(dim);
            }
          }
        }
      }
    }
  }
  return info;
}

export function parseOnnxIO(buf: Uint8Array): OnnxIO {
  const io: OnnxIO = { inputs: [], outputs: [], opset: undefined, externalLocations: [] };
  const locations = new Set<string>();
  for (const f of new Reader(buf).fields()) {
    if (f.field === 8 && f.wire === 2) {
      let domain = "";
      let version: number | undefined;
      for (const o of new Reader(buf, f.end).seek(f.start).fields()) {
        if (o.field === 1 && o.wire === 2) domain = text.decode(buf.subarray(o.start, o.end));
        if (o.field === 2 && o.value !== undefined) version = Number(o.value);
      }
      if (domain === "" || domain === "ai.onnx") io.opset = version;
    }
    if (f.field !== 7 || f.wire !== 2) continue;
    const initializers = new Set<string>();
    const ins: OnnxValueInfo[] = [];
    for (const g of new Reader(buf, f.end).seek(f.start).fields()) {
      if (g.wire !== 2) continue;
      if (g.field === 11) ins.push(valueInfo(buf, g.start, g.end));
      else if (g.field === 12) io.outputs.push(valueInfo(buf, g.start, g.end));
      else if (g.field === 5) {
        for (const t of new Reader(buf, g.end).seek(g.start).fields()) {
          if (t.field === 8 && t.wire === 2) initializers.add(text.decode(buf.subarray(t.start, t.end)));
          if (t.field === 13 && t.wire === 2) {
            let key = "";
            let value = "";
            for (const kv of new Reader(buf, t.end).seek(t.start).fields()) {
              if (kv.field === 1 && kv.wire === 2) key = text.decode(buf.subarray(kv.start, kv.end));
              if (kv.field === 2 && kv.wire === 2) value = text.decode(buf.subarray(kv.start, kv.end));
            }
            if (key === "location") locations.add(value);
          }
        }
      }
    }
    io.inputs = ins.filter((v) => !initializers.has(v.name)); // old exporters list initializers as inputs
  }
  io.externalLocations = [...locations].sort();
  return io;
}

export async function readOnnxIO(path: string): Promise<OnnxIO> {
  return parseOnnxIO(new Uint8Array(await readFile(path)));
}
