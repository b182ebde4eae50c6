// Writes ONNX models from TypeScript: a small graph-building API over the ONNX protobuf schema
// (onnx.proto field numbers), with initializers kept inline, moved to an external data file, or pointing
// into an existing file (e.g. straight into a safetensors checkpoint, so 16 GB of weights are not copied).

import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { ProtoWriter } from "./protobuf-writer";

export const ONNX_DTYPES = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;
export type OnnxDType = keyof typeof ONNX_DTYPES;

export const DTYPE_BYTES: Record<OnnxDType, number> = {
  FLOAT: 4, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, INT32: 4, INT64: 8, STRING: 0 /* variable length: value infos only */, BOOL: 1,
  FLOAT16: 2, DOUBLE: 8, UINT32: 4, UINT64: 8, BFLOAT16: 2,
};

export type Dim = number | string;

/** Bytes already on disk, referenced by an ONNX external-data entry (path relative to the model file). */
export interface ExternalBytes {
  location: string;
  offset: number;
  length: number;
}

export interface TensorData {
  dtype: OnnxDType;
  dims: readonly number[];
  /** Little-endian element bytes (a typed array's view is fine), or a reference to bytes on disk. */
  data: ArrayBufferView | ExternalBytes;
}

export type AttrValue =
  | number // INT
  | { float: number }
  | number[] // INTS
  | { floats: number[] }
  | string
  | { tensor: TensorData }
  | { graph: GraphBuilder };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  name: string;
  domain: string;
}

interface ValueInfo {
  name: string;
  dtype: OnnxDType;
  dims: readonly Dim[] | undefined;
}

export interface SaveOptions {
  opset?: number;
  /** Inline initializers at least this large go to `<model file>.data` (ONNX external data). */
  externalThresholdBytes?: number;
  producer?: string;
}

export function isExternal(d: TensorData["data"]): d is ExternalBytes {
  return (d as ExternalBytes).location !== undefined;
}

function viewBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers = new Map<string, TensorData>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, dtype: OnnxDType, dims: readonly Dim[]): string {
    this.inputs.push({ name, dtype, dims });
    return name;
  }

  /** Declares a graph output; `dims` may be omitted (shape left to inference). */
  output(name: string, dtype: OnnxDType, dims?: readonly Dim[]): string {
    this.outputs.push({ name, dtype, dims });
    return name;
  }

  initializer(name: string, tensor: TensorData): string {
    if (this.initializers.has(name)) throw new Error(`duplicate initializer ${name}`);
    this.initializers.set(name, tensor);
    return name;
  }

  /** A constant tensor stored as an initializer with a fresh name. */
  constant(tensor: TensorData, prefix = "const"): string {
    return this.initializer(this.fresh(prefix), tensor);
  }

  constInt64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant({ dtype: "INT64", dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) }, "i64");
  }

  constFloat(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant({ dtype: "FLOAT", dims, data: Float32Array.from(values) }, "f32");
  }

  scalarFloat(value: number): string {
    return this.constFloat([value], []);
  }

  scalarInt64(value: number): string {
    return this.constInt64([value], []);
  }

  /** Adds a node with one output and returns the output name. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const out = outName ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs, name: this.fresh(`n_${op}`), domain: "" });
    return out;
  }

  /** Adds a node with several outputs. */
  opN(op: string, inputs: string[], nOutputs: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs, name: this.fresh(`n_${op}`), domain: "" });
    return outs;
  }

  /** Writes the graph (without initializers that go external) as GraphProto fields. */
  writeGraph(w: ProtoWriter, placeTensor: (name: string, t: TensorData) => TensorPlacement): void {
    for (const n of this.nodes) w.message(1, (nw) => writeNode(nw, n, placeTensor));
    w.string(2, this.name);
    for (const [name, t] of this.initializers) w.message(5, (tw) => writeTensor(tw, name, t, placeTensor(name, t)));
    for (const v of this.inputs) w.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of this.outputs) w.message(12, (vw) => writeValueInfo(vw, v));
  }

  /** Serialises a model whose initializers all stay inline (small models, tests). */
  toBytes(opts: SaveOptions = {}): Uint8Array {
    const w = new ProtoWriter();
    writeModel(w, this, opts, () => ({ kind: "inline" }));
    return w.toBytes();
  }

  /**
   * Writes `path` and, when some initializer reaches the threshold, `<path>.data` beside it. External
   * references that already exist on disk (ExternalBytes) are written as references unchanged.
   */
  async save(path: string, opts: SaveOptions = {}): Promise<{ modelBytes: number; externalBytes: number }> {
    await mkdir(dirname(path), { recursive: true });
    const threshold = opts.externalThresholdBytes ?? Infinity;
    const dataName = `${basename(path)}.data`;
    const pending: Uint8Array[] = [];
    let dataOffset = 0;
    const placements = new Map<string, TensorPlacement>();
    const place = (name: string, t: TensorData): TensorPlacement => {
      const known = placements.get(name);
      if (known) return known;
      let p: TensorPlacement;
      if (isExternal(t.data)) p = { kind: "external", ref: t.data };
      else if (t.data.byteLength >= threshold) {
        const pad = (64 - (dataOffset % 64)) % 64; // keep tensors aligned for mmap readers
        if (pad) pending.push(new Uint8Array(pad));
        dataOffset += pad;
        p = { kind: "external", ref: { location: dataName, offset: dataOffset, length: t.data.byteLength } };
        pending.push(viewBytes(t.data));
        dataOffset += t.data.byteLength;
      } else p = { kind: "inline" };
      placements.set(name, p);
      return p;
    };
    const w = new ProtoWriter();
    writeModel(w, this, opts, place);
    const chunks = w.finish();
    await writeChunks(path, chunks);
    if (pending.length) await writeChunks(join(dirname(path), dataName), pending);
    return { modelBytes: w.length, externalBytes: dataOffset };
  }
}

export type TensorPlacement = { kind: "inline" } | { kind: "external"; ref: ExternalBytes };

async function writeChunks(path: string, chunks: Uint8Array[]): Promise<void> {
  const s = createWriteStream(path);
  for (const c of chunks) {
    if (!s.write(c)) await new Promise<void>((r) => s.once("drain", () => r()));
  }
  s.end();
  await finished(s);
}

function writeModel(
  w: ProtoWriter,
  g: GraphBuilder,
  opts: SaveOptions,
  place: (name: string, t: TensorData) => TensorPlacement,
): void {
  w.int(1, 8); // ir_version 8: understood by onnxruntime and the TensorRT parser
  w.string(2, opts.producer ?? "dimoo-graph-builder");
  w.string(3, "1");
  w.message(7, (gw) => g.writeGraph(gw, place));
  w.message(8, (ow) => {
    ow.string(1, "");
    ow.int(2, opts.opset ?? 17);
  });
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (tw) =>
    tw.message(1, (tt) => {
      tt.int(1, ONNX_DTYPES[v.dtype]);
      if (v.dims)
        tt.message(2, (sw) => {
          for (const d of v.dims!) sw.message(1, (dw) => (typeof d === "number" ? dw.int(1, d) : dw.string(2, d)));
        });
    }),
  );
}

function writeTensor(w: ProtoWriter, name: string, t: TensorData, placement: TensorPlacement): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_DTYPES[t.dtype]);
  w.string(8, name);
  if (placement.kind === "external") {
    const ref = placement.ref;
    const entry = (k: string, v: string) =>
      w.message(13, (ew) => {
        ew.string(1, k);
        ew.string(2, v);
      });
    entry("location", ref.location);
    entry("offset", String(ref.offset));
    entry("length", String(ref.length));
    w.int(14, 1); // data_location = EXTERNAL
  } else {
    if (isExternal(t.data)) throw new Error(`tensor ${name} refers to external bytes; save() it to a file`);
    const expected = t.dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected)
      throw new Error(`tensor ${name}: ${t.data.byteLength} bytes for dims [${t.dims}] of ${t.dtype}`);
    w.bytes(9, viewBytes(t.data));
  }
}

function writeNode(w: ProtoWriter, n: NodeSpec, place: (name: string, t: TensorData) => TensorPlacement): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [key, value] of Object.entries(n.attrs)) w.message(5, (aw) => writeAttr(aw, key, value, place));
  if (n.domain) w.string(7, n.domain);
}

function writeAttr(
  w: ProtoWriter,
  name: string,
  v: AttrValue,
  place: (name: string, t: TensorData) => TensorPlacement,
): void {
  w.string(1, name);
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float: x} for float values`);
    w.int(20, 2);
    w.int(3, v);
  } else if (typeof v === "string") {
    w.int(20, 3);
    w.string(4, v);
  } else if (Array.isArray(v)) {
    w.int(20, 7);
    w.packedInts(8, v);
  } else if ("float" in v) {
    w.int(20, 1);
    w.float(2, v.float);
  } else if ("floats" in v) {
    w.int(20, 6);
    w.packedFloats(7, v.floats);
  } else if ("tensor" in v) {
    w.int(20, 4);
    w.message(5, (tw) => writeTensor(tw, name, v.tensor, { kind: "inline" }));
  } else {
    w.int(20, 5);
    w.message(6, (gw) => v.graph.writeGraph(gw, place));
  }
}
