// Model instances of the embedded backend. Tensors cross this boundary in Triton's raw form (little-endian
// bytes; BYTES as length-prefixed elements). The ONNX Runtime instance runs onnxruntime-node (CPU) in a
// worker thread; the identity instance copies input i to output i, like Triton's identity backend.

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import { bytesToStrings, deserializeBytes, serializeBytes } from "../triton/codec";
import { TYPED_ARRAY, type DataType } from "../triton/datatypes";

export interface RawTensor {
  datatype: DataType;
  shape: number[];
  /** Little-endian element bytes; for BYTES the length-prefixed elements. */
  raw: Uint8Array;
}

export interface IOInfo {
  name: string;
  /** Model-config type name (TYPE_FP32...), or TYPE_INVALID for types the embedded backend cannot carry. */
  configType: string;
  /** -1 = symbolic/unknown dimension. */
  dims: number[];
}

export interface Executor {
  readonly inputs: IOInfo[];
  readonly outputs: IOInfo[];
  /**
   * Runs the model. Inputs named in `donate` may be handed to the instance without a copy (Triton's
   * use_same_buffer_for_input_output: the state buffer is the model's): after a successful run their
   * `raw` is detached, after a failed one it is restored.
   */
  run(inputs: Map<string, RawTensor>, outputs: readonly string[], donate?: ReadonlySet<string>): Promise<Map<string, RawTensor>>;
  close(): Promise<void>;
}

export class ExecutionError extends Error {
  override name = "ExecutionError";
}

// ---- ONNX Runtime ---------------------------------------------------------------------------------------

const ORT_TYPE_OF: Partial<Record<DataType, ort.Tensor.Type>> = {
  BOOL: "bool",
  UINT8: "uint8",
  UINT16: "uint16",
  UINT32: "uint32",
  UINT64: "uint64",
  INT8: "int8",
  INT16: "int16",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
  BYTES: "string",
};

const DATATYPE_OF_ORT: Record<string, DataType> = Object.fromEntries(Object.entries(ORT_TYPE_OF).map(([k, v]) => [v, k as DataType]));

export function configTypeOfOrt(t: string | undefined): string {
  const dt = t === undefined ? undefined : DATATYPE_OF_ORT[t];
  if (!dt) return "TYPE_INVALID";
  return dt === "BYTES" ? "TYPE_STRING" : `TYPE_${dt}`;
}

export interface OrtOptions {
  /** Default: min(4, cores). From config.pbtxt `parameters { key: "intra_op_thread_count" ... }`. */
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
}

function sessionOptions(o: OrtOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: o.intraOpNumThreads ?? Math.max(1, Math.min(4, availableParallelism())),
    interOpNumThreads: o.interOpNumThreads ?? 1,
    executionMode: "sequential",
    graphOptimizationLevel: o.graphOptimizationLevel ?? "all",
    enableCpuMemArena: true,
    enableMemPattern: true,
    // Several sessions may run at once on a small machine: idle intra-op threads sleep instead of spinning
    // (a session config entry; ignored where onnxruntime-node does not pass `extra` through).
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

interface WireTensor {
  type: string;
  dims: number[];
  data: ArrayBufferView | string[];
}

/** Whether `raw` is its whole (non-shared) buffer, so that transferring the buffer moves exactly it. */
function ownsBuffer(raw: Uint8Array): boolean {
  return raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer;
}

/**
 * Raw bytes to the typed array onnxruntime expects, in a buffer the worker may own: a fresh copy, or with
 * `inPlace` the tensor's own buffer when it spans all of it (no copy; the caller gives it up).
 */
function toOrtData(t: RawTensor, inPlace = false): { data: ArrayBufferView | string[]; transfer?: ArrayBuffer; donated?: boolean } {
  if (t.datatype === "BYTES") return { data: bytesToStrings(deserializeBytes(t.raw)) };
  const donated = inPlace && ownsBuffer(t.raw);
  const ab = donated ? (t.raw.buffer as ArrayBuffer) : new ArrayBuffer(t.raw.byteLength);
  if (!donated) new Uint8Array(ab).set(t.raw);
  const Ctor = TYPED_ARRAY[t.datatype as Exclude<DataType, "BYTES">];
  const size = Ctor.BYTES_PER_ELEMENT;
  return { data: new Ctor(ab, 0, t.raw.byteLength / size), transfer: ab, donated };
}

function fromOrt(name: string, t: WireTensor): RawTensor {
  const datatype = DATATYPE_OF_ORT[t.type];
  if (!datatype) throw new ExecutionError(`output '${name}' has onnxruntime type '${t.type}' which Triton cannot carry`);
  const shape = t.dims.map(Number);
  if (datatype === "BYTES") return { datatype, shape, raw: serializeBytes(t.data as string[]) };
  const v = t.data as ArrayBufferView;
  return { datatype, shape, raw: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
}

function ioInfo(m: { name: string; isTensor: boolean; type?: string; shape: (number | string)[] }): IOInfo {
  return {
    name: m.name,
    configType: m.isTensor ? configTypeOfOrt(m.type) : "TYPE_INVALID",
    dims: m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)),
  };
}

interface Reply {
  type: "ok" | "error";
  id: number;
  message?: string;
  /** On a failed run, the donated input buffers, handed back. */
  returned?: Record<string, ArrayBuffer>;
  inputs?: OrtMeta[];
  outputs?: OrtMeta[] | Record<string, WireTensor>;
}
type OrtMeta = { name: string; isTensor: boolean; type?: string; shape: (number | string)[] };

class PoolWorker {
  readonly worker: Worker;
  sessions = 0;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  dead?: Error;

  constructor() {
    this.worker = new Worker(new URL("./ort-worker.mjs", import.meta.url));
    this.worker.unref();
    this.worker.on("message", (m: Reply) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (!w) return;
      if (m.type === "ok") w.resolve(m);
      else w.reject(Object.assign(new ExecutionError(m.message ?? "onnxruntime error"), { returned: m.returned }));
    });
    const fail = (e: Error) => {
      if (this.dead) return;
      this.dead = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new ExecutionError(`onnxruntime worker exited with code ${code}`)));
  }

  request(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }
}

/**
 * Worker threads that host onnxruntime sessions. Each model instance is one session, placed on the least
 * loaded worker; a worker runs its sessions one at a time, so instances on different workers run in
 * parallel. Workers start lazily (a repository with no ONNX model starts none).
 */
export class OrtWorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextSid = 0;
  private closed = false;

  constructor(readonly size: number = Math.max(1, Math.min(4, availableParallelism()))) {}

  private pick(): PoolWorker {
    if (this.closed) throw new ExecutionError("onnxruntime pool is closed");
    const live = this.workers.filter((w) => !w.dead);
    if (live.length < this.size) {
      const w = new PoolWorker();
      this.workers.push(w);
      return w;
    }
    return live.reduce((a, b) => (b.sessions < a.sessions ? b : a));
  }

  /** Loads `path` (a .onnx file; external data files beside it are found by onnxruntime) as one instance. */
  async load(path: string, options: OrtOptions = {}): Promise<Executor> {
    const worker = this.pick();
    const sid = this.nextSid++;
    worker.sessions++;
    try {
      const r = await worker.request({ type: "load", sid, path, options: sessionOptions(options) });
      return new OrtSessionExecutor(worker, sid, (r.inputs ?? []).map(ioInfo), ((r.outputs ?? []) as OrtMeta[]).map(ioInfo));
    } catch (e) {
      worker.sessions--;
      throw e;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
  }
}

class OrtSessionExecutor implements Executor {
  private released = false;

  constructor(
    private readonly worker: PoolWorker,
    private readonly sid: number,
    readonly inputs: IOInfo[],
    readonly outputs: IOInfo[],
  ) {}

  async run(inputs: Map<string, RawTensor>, outputs: readonly string[], donate?: ReadonlySet<string>): Promise<Map<string, RawTensor>> {
    if (this.released) throw new ExecutionError("instance is unloaded");
    const feeds: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    const donated = new Map<string, RawTensor>();
    for (const [name, t] of inputs) {
      const type = ORT_TYPE_OF[t.datatype];
      if (!type) throw new ExecutionError(`datatype ${t.datatype} is not supported by onnxruntime`);
      const d = toOrtData(t, donate?.has(name));
      feeds[name] = { type, dims: t.shape, data: d.data };
      if (d.transfer) transfer.push(d.transfer);
      if (d.donated) donated.set(name, t);
    }
    let r: Reply;
    try {
      r = await this.worker.request({ type: "run", sid: this.sid, feeds, fetches: outputs, donated: [...donated.keys()] }, transfer);
    } catch (e) {
      const returned = (e as { returned?: Record<string, ArrayBuffer> }).returned ?? {};
      for (const [name, t] of donated) if (returned[name]) t.raw = new Uint8Array(returned[name]);
      throw e;
    }
    for (const t of donated.values()) t.raw = new Uint8Array(0);
    const result = r.outputs as Record<string, WireTensor>;
    const out = new Map<string, RawTensor>();
    for (const name of outputs) out.set(name, fromOrt(name, result[name]));
    return out;
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.worker.sessions--;
    await this.worker.request({ type: "release", sid: this.sid }).catch(() => undefined);
  }
}

// ---- identity -------------------------------------------------------------------------------------------

/**
 * Triton's identity backend: output i is a copy of input i (config order), for every datatype incl. BF16.
 * Like the real one it honours the config parameter `execute_delay_ms` (a sleep per execution).
 */
export class IdentityExecutor implements Executor {
  constructor(
    readonly inputs: IOInfo[],
    readonly outputs: IOInfo[],
    private readonly delayMs = 0,
  ) {}

  async run(inputs: Map<string, RawTensor>, outputs: readonly string[]): Promise<Map<string, RawTensor>> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const out = new Map<string, RawTensor>();
    for (const name of outputs) {
      const idx = this.outputs.findIndex((o) => o.name === name);
      const src = idx >= 0 ? inputs.get(this.inputs[idx]?.name ?? "") : undefined;
      if (!src) throw new ExecutionError(`identity: no input for output '${name}'`);
      out.set(name, { datatype: src.datatype, shape: [...src.shape], raw: new Uint8Array(src.raw) });
    }
    return out;
  }

  async close(): Promise<void> {}
}
