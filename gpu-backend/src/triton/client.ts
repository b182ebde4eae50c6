// A Triton gRPC client on @grpc/grpc-js: one channel per TritonClient, reused by every call (unary and
// streaming). Tensors always travel as raw_input_contents / raw_output_contents; outputs are paired with
// raw_output_contents by index and returned by name. Deadlines and cancellation use AbortSignal or
// timeoutMs; failures are TritonErrors carrying the gRPC code and Triton's message.

import * as grpc from "@grpc/grpc-js";
import { decodeTensorData, encodeInputTensor, serializeBytes, TensorDataError } from "./codec";
import { isDataType, type AnyTensor, type DataType, type InputTensor, type Tensor } from "./datatypes";
import { Status, TritonError, codeForMessage, toTritonError, type TritonErrorContext } from "./errors";
import type { ModelConfig } from "./model-config";
import {
  loadTritonGrpc,
  type InferParameterMsg,
  type InferTensorContentsMsg,
  type ModelIndexMsg,
  type ModelInferRequestMsg,
  type ModelInferResponseMsg,
  type ModelMetadataResponseMsg,
  type ModelStatisticsMsg,
  type ModelStreamInferResponseMsg,
  type ServerMetadataResponseMsg,
  type StatisticDurationMsg,
} from "./proto";

// ---- options and public types ---------------------------------------------------------------------------

export interface TritonClientOptions {
  /** Default: insecure, or TLS for https:// and grpcs:// URLs. */
  credentials?: grpc.ChannelCredentials;
  /**
   * Keepalive ping interval. Default 600000 ms (10 min): Triton's default server policy strikes clients that
   * ping more often than every 5 minutes without data (GOAWAY too_many_pings). 0 disables keepalive.
   */
  keepaliveTimeMs?: number;
  /** How long to wait for a keepalive ack (default 20000 ms, as Triton's own clients). */
  keepaliveTimeoutMs?: number;
  /** Deadline applied to calls that give neither timeoutMs nor deadline (default: none). */
  defaultTimeoutMs?: number;
  /** Metadata (headers) sent with every call, e.g. `triton-grpc-protocol-<key>` for restricted protocols. */
  metadata?: Record<string, string>;
  /** Extra grpc-js channel options; they override the defaults set here. */
  channelOptions?: grpc.ChannelOptions;
}

export interface CallOptions {
  /** Aborting cancels the call (code CANCELLED; DEADLINE_EXCEEDED when the reason is a TimeoutError). */
  signal?: AbortSignal;
  /** Relative deadline in milliseconds (code DEADLINE_EXCEEDED when it passes). */
  timeoutMs?: number;
  /** Absolute deadline (Date or epoch milliseconds). */
  deadline?: Date | number;
  /** Per-call metadata, merged over the client's. */
  metadata?: Record<string, string>;
}

/** Scalar request parameter values: numbers become int64_param (integers) or double_param. */
export type ParameterValue = string | number | bigint | boolean;

/**
 * Request parameters. The reserved keys get Triton's expected types: `sequence_id` int64 (or string),
 * `sequence_start`/`sequence_end` bool, `priority` uint64 (0 = default level, 1 = highest), `timeout`
 * int64 microseconds (queue timeout, honoured per the model's queue policy). Other keys are custom
 * parameters passed to the backend; keys starting with "triton_" are reserved by Triton.
 */
export interface InferParameters {
  sequence_id?: number | bigint | string;
  sequence_start?: boolean;
  sequence_end?: boolean;
  priority?: number | bigint;
  timeout?: number | bigint;
  [key: string]: ParameterValue | undefined;
}

export type NamedInputTensor = InputTensor & { name: string };

export interface InferRequest extends CallOptions {
  /** Inputs by name (`{ ids: { datatype: "INT64", shape: [1, 4], data } }`) or as a list with names. */
  inputs: Record<string, InputTensor> | readonly NamedInputTensor[];
  /** Names of the outputs to return; omitted or empty = all outputs of the model. */
  outputs?: readonly string[];
  /** Model version; omitted = the server's version policy (latest ready). */
  version?: string | number;
  /** Request id, echoed in the response (and in Triton's error messages). */
  requestId?: string;
  parameters?: InferParameters;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  /** -1 = variable (including the batch dimension of batching models). */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ModelIndexEntry {
  name: string;
  version: string;
  /** UNKNOWN, READY, UNAVAILABLE, LOADING or UNLOADING. */
  state: string;
  reason: string;
}

export interface Duration {
  count: number;
  ns: number;
}

export interface ModelStatistics {
  name: string;
  version: string;
  /** Milliseconds since the epoch; 0 = never. */
  lastInference: number;
  /** Inferences; a batch of n counts n. */
  inferenceCount: number;
  /** Model executions; a batch counts once. */
  executionCount: number;
  inferenceStats: {
    success: Duration;
    fail: Duration;
    queue: Duration;
    computeInput: Duration;
    computeInfer: Duration;
    computeOutput: Duration;
    cacheHit: Duration;
    cacheMiss: Duration;
  };
  batchStats: { batchSize: number; computeInput: Duration; computeInfer: Duration; computeOutput: Duration }[];
  memoryUsage: { type: string; id: number; byteSize: number }[];
}

export type ResponseParameters = Record<string, string | number | boolean>;

export class InferResult {
  constructor(
    readonly modelName: string,
    readonly modelVersion: string,
    readonly id: string,
    readonly parameters: ResponseParameters,
    /** Output tensors by name (typed arrays; views of the received message where alignment allows). */
    readonly outputs: Record<string, AnyTensor>,
  ) {}

  /** The named output; with `datatype`, also checks it. Throws a TritonError (INTERNAL) otherwise. */
  tensor<D extends DataType>(name: string, datatype?: D): Tensor<D> {
    const t = this.outputs[name];
    if (!t) {
      throw new TritonError(Status.INTERNAL, `response of model '${this.modelName}' has no output '${name}' (has ${Object.keys(this.outputs).join(", ") || "none"})`, {
        model: this.modelName,
        requestId: this.id,
      });
    }
    if (datatype !== undefined && t.datatype !== datatype) {
      throw new TritonError(Status.INTERNAL, `output '${name}' of model '${this.modelName}' is ${t.datatype}, expected ${datatype}`, {
        model: this.modelName,
        requestId: this.id,
      });
    }
    return t as Tensor<D>;
  }
}

// ---- helpers --------------------------------------------------------------------------------------------

const RESERVED_CUSTOM = new Set(["headers", "binary_data_output"]);
const ALLOWED_TRITON_PARAMS = new Set(["triton_enable_empty_final_response"]);

function int64Of(v: number | bigint, key: string): string {
  if (typeof v === "bigint") return v.toString();
  if (!Number.isSafeInteger(v)) throw new TritonError(Status.INVALID_ARGUMENT, `parameter '${key}' must be an integer, got ${v}`);
  return String(v);
}

export function encodeParameters(params: InferParameters | undefined): Record<string, InferParameterMsg> {
  const out: Record<string, InferParameterMsg> = {};
  if (!params) return out;
  for (const [key, v] of Object.entries(params)) {
    if (v === undefined) continue;
    switch (key) {
      case "sequence_id":
        out[key] = typeof v === "string" ? { string_param: v } : { int64_param: int64Of(v as number | bigint, key) };
        break;
      case "sequence_start":
      case "sequence_end":
        if (typeof v !== "boolean") throw new TritonError(Status.INVALID_ARGUMENT, `parameter '${key}' must be a boolean`);
        out[key] = { bool_param: v };
        break;
      case "priority": {
        const s = int64Of(v as number | bigint, key);
        if (s.startsWith("-")) throw new TritonError(Status.INVALID_ARGUMENT, "invalid value for 'priority', expected value >= 0.");
        out[key] = { uint64_param: s };
        break;
      }
      case "timeout":
        out[key] = { int64_param: int64Of(v as number | bigint, key) };
        break;
      default:
        if (RESERVED_CUSTOM.has(key)) throw new TritonError(Status.INVALID_ARGUMENT, `parameter '${key}' is reserved by Triton`);
        if (key.startsWith("triton_") && !ALLOWED_TRITON_PARAMS.has(key)) {
          throw new TritonError(Status.INVALID_ARGUMENT, `parameter keys starting with 'triton_' are reserved for Triton usage: '${key}'`);
        }
        if (typeof v === "boolean") out[key] = { bool_param: v };
        else if (typeof v === "string") out[key] = { string_param: v };
        else if (typeof v === "bigint") out[key] = { int64_param: v.toString() };
        else if (Number.isInteger(v)) out[key] = { int64_param: int64Of(v, key) };
        else out[key] = { double_param: v };
    }
  }
  return out;
}

function decodeParameters(params: Record<string, InferParameterMsg> | undefined | null): ResponseParameters {
  const out: ResponseParameters = {};
  if (!params) return out;
  for (const [k, p] of Object.entries(params)) {
    const choice = p.parameter_choice;
    if (!choice) continue;
    const v = p[choice];
    if (v !== undefined) out[k] = typeof v === "string" && (choice === "int64_param" || choice === "uint64_param") ? Number(v) : (v as string | number | boolean);
  }
  return out;
}

function toNum(v: number | string | undefined | null): number {
  return v === undefined || v === null ? 0 : Number(v);
}

function duration(d: StatisticDurationMsg | null | undefined): Duration {
  return { count: toNum(d?.count), ns: toNum(d?.ns) };
}

/** Typed `contents` fallback for servers that answer without raw_output_contents (Triton never does). */
function rawFromContents(datatype: DataType, c: Partial<InferTensorContentsMsg>): Uint8Array {
  const pick = <T>(a: T[] | undefined): T[] => a ?? [];
  switch (datatype) {
    case "BOOL":
      return Uint8Array.from(pick(c.bool_contents), (b) => (b ? 1 : 0));
    case "INT8":
      return new Uint8Array(Int8Array.from(pick(c.int_contents)).buffer);
    case "INT16":
      return new Uint8Array(Int16Array.from(pick(c.int_contents)).buffer);
    case "INT32":
      return new Uint8Array(Int32Array.from(pick(c.int_contents)).buffer);
    case "INT64":
      return new Uint8Array(BigInt64Array.from(pick(c.int64_contents), (v) => BigInt(v)).buffer);
    case "UINT8":
      return Uint8Array.from(pick(c.uint_contents));
    case "UINT16":
      return new Uint8Array(Uint16Array.from(pick(c.uint_contents)).buffer);
    case "UINT32":
      return new Uint8Array(Uint32Array.from(pick(c.uint_contents)).buffer);
    case "UINT64":
      return new Uint8Array(BigUint64Array.from(pick(c.uint64_contents), (v) => BigInt(v)).buffer);
    case "FP32":
      return new Uint8Array(Float32Array.from(pick(c.fp32_contents)).buffer);
    case "FP64":
      return new Uint8Array(Float64Array.from(pick(c.fp64_contents)).buffer);
    case "BYTES":
      return serializeBytes(pick(c.bytes_contents));
    default:
      return new Uint8Array(0);
  }
}

export function decodeInferResponse(msg: ModelInferResponseMsg, ctx: TritonErrorContext = {}): InferResult {
  const outputs: Record<string, AnyTensor> = {};
  msg.outputs.forEach((o, i) => {
    if (!isDataType(o.datatype)) {
      throw new TritonError(Status.INTERNAL, `output '${o.name}' has unknown datatype '${o.datatype}'`, ctx);
    }
    const shape = o.shape.map(Number);
    let raw = msg.raw_output_contents[i];
    if (raw === undefined && o.contents) {
      raw = rawFromContents(o.datatype, o.contents);
    }
    try {
      outputs[o.name] = { datatype: o.datatype, shape, data: decodeTensorData(o.datatype, shape, raw ?? new Uint8Array(0)) } as AnyTensor;
    } catch (e) {
      if (e instanceof TensorDataError) throw new TritonError(Status.INTERNAL, `output '${o.name}': ${e.message}`, ctx);
      throw e;
    }
  });
  return new InferResult(msg.model_name, msg.model_version, msg.id, decodeParameters(msg.parameters), outputs);
}

export function buildInferRequest(model: string, req: InferRequest): ModelInferRequestMsg {
  const named: NamedInputTensor[] = Array.isArray(req.inputs)
    ? (req.inputs as readonly NamedInputTensor[]).slice()
    : Object.entries(req.inputs as Record<string, InputTensor>).map(([name, t]) => ({ ...t, name }) as NamedInputTensor);
  const inputs: ModelInferRequestMsg["inputs"] = [];
  const raw: Uint8Array[] = [];
  for (const t of named) {
    if (!isDataType(t.datatype)) throw new TritonError(Status.INVALID_ARGUMENT, `input '${t.name}': unknown datatype '${t.datatype}'`, { model });
    let enc;
    try {
      enc = encodeInputTensor(t);
    } catch (e) {
      if (e instanceof TensorDataError) throw new TritonError(Status.INVALID_ARGUMENT, `input '${t.name}': ${e.message}`, { model, requestId: req.requestId });
      throw e;
    }
    inputs.push({ name: t.name, datatype: t.datatype, shape: enc.shape, parameters: {} });
    raw.push(enc.raw);
  }
  return {
    model_name: model,
    model_version: req.version === undefined ? "" : String(req.version),
    id: req.requestId ?? "",
    parameters: encodeParameters(req.parameters),
    inputs,
    outputs: (req.outputs ?? []).map((name) => ({ name, parameters: {} })),
    raw_input_contents: raw,
  };
}

function parseTarget(url: string): { target: string; tls: boolean } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(url);
  if (!m) return { target: url, tls: false };
  const scheme = m[1].toLowerCase();
  if (scheme === "http" || scheme === "grpc") return { target: m[2].replace(/\/+$/, ""), tls: false };
  if (scheme === "https" || scheme === "grpcs") return { target: m[2].replace(/\/+$/, ""), tls: true };
  return { target: url, tls: false }; // dns:///, unix://, ipv4: ... are grpc-js targets
}

type UnaryFn = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

// ---- client ---------------------------------------------------------------------------------------------

export class TritonClient {
  readonly target: string;
  private readonly stub: grpc.Client;
  private readonly health: grpc.Client;
  private readonly baseMetadata: Record<string, string>;
  private readonly defaultTimeoutMs?: number;
  private closed = false;

  constructor(url: string, opts: TritonClientOptions = {}) {
    const { target, tls } = parseTarget(url);
    this.target = target;
    const keepalive = opts.keepaliveTimeMs ?? 600_000;
    const channelOptions: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      ...(keepalive > 0
        ? {
            "grpc.keepalive_time_ms": keepalive,
            "grpc.keepalive_timeout_ms": opts.keepaliveTimeoutMs ?? 20_000,
            "grpc.keepalive_permit_without_calls": 0,
          }
        : {}),
      ...opts.channelOptions,
    };
    const credentials = opts.credentials ?? (tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
    const pkg = loadTritonGrpc("number");
    this.stub = new pkg.GRPCInferenceService(target, credentials, channelOptions);
    // The health stub shares the channel of the inference stub.
    this.health = new pkg.Health(target, credentials, { ...channelOptions, channelOverride: this.stub.getChannel() } as grpc.ChannelOptions);
    this.baseMetadata = { ...opts.metadata };
    this.defaultTimeoutMs = opts.defaultTimeoutMs;
  }

  /** Closes the channel; calls in flight fail with CANCELLED/UNAVAILABLE. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stub.close();
  }

  private metadataFor(opts: CallOptions): grpc.Metadata {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries({ ...this.baseMetadata, ...opts.metadata })) md.set(k, v);
    return md;
  }

  private deadlineFor(opts: CallOptions): grpc.Deadline | undefined {
    if (opts.deadline !== undefined) return opts.deadline;
    const ms = opts.timeoutMs ?? this.defaultTimeoutMs;
    return ms === undefined ? undefined : Date.now() + ms;
  }

  private unary<Res>(client: grpc.Client, rpc: string, req: unknown, opts: CallOptions, ctx: TritonErrorContext = {}): Promise<Res> {
    const context = { rpc, ...ctx };
    return new Promise<Res>((resolve, reject) => {
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(abortError(signal, context));
        return;
      }
      const fn = (client as unknown as Record<string, UnaryFn>)[rpc].bind(client);
      const deadline = this.deadlineFor(opts);
      const onAbort = () => call.cancel();
      const call = fn(req, this.metadataFor(opts), deadline === undefined ? {} : { deadline }, (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          if (signal?.aborted && err.code === Status.CANCELLED) reject(abortError(signal, context));
          else reject(toTritonError(err, context));
        } else resolve(res as Res);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private call<Res>(rpc: string, req: unknown, opts: CallOptions = {}, ctx: TritonErrorContext = {}): Promise<Res> {
    return this.unary<Res>(this.stub, rpc, req, opts, ctx);
  }

  // ---- health and metadata ----

  async serverLive(opts: CallOptions = {}): Promise<boolean> {
    return (await this.call<{ live: boolean }>("ServerLive", {}, opts)).live;
  }

  async serverReady(opts: CallOptions = {}): Promise<boolean> {
    return (await this.call<{ ready: boolean }>("ServerReady", {}, opts)).ready;
  }

  /** Readiness of one model. An unknown model is an error (NOT_FOUND), as in Triton, not `false`. */
  async modelReady(model: string, version: string | number = "", opts: CallOptions = {}): Promise<boolean> {
    return (await this.call<{ ready: boolean }>("ModelReady", { name: model, version: String(version) }, opts, { model })).ready;
  }

  /** grpc.health.v1 Check: "SERVING" iff the server is ready. */
  async healthCheck(opts: CallOptions = {}): Promise<string> {
    return (await this.unary<{ status: string }>(this.health, "Check", { service: "" }, opts, {})).status;
  }

  /** Polls ServerReady until it answers true; rejects with the last error when timeoutMs passes. */
  async waitUntilReady(opts: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const until = Date.now() + (opts.timeoutMs ?? 30_000);
    let last: unknown;
    for (;;) {
      try {
        if (await this.serverReady({ timeoutMs: Math.max(1, Math.min(5_000, until - Date.now())), signal: opts.signal })) return;
        last = new TritonError(Status.UNAVAILABLE, "server is not ready");
      } catch (e) {
        last = e;
        if (opts.signal?.aborted) throw e;
      }
      if (Date.now() >= until) throw toTritonError(last, { rpc: "ServerReady" });
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
  }

  async serverMetadata(opts: CallOptions = {}): Promise<ServerMetadata> {
    const r = await this.call<ServerMetadataResponseMsg>("ServerMetadata", {}, opts);
    return { name: r.name, version: r.version, extensions: r.extensions };
  }

  async modelMetadata(model: string, version: string | number = "", opts: CallOptions = {}): Promise<ModelMetadata> {
    const r = await this.call<ModelMetadataResponseMsg>("ModelMetadata", { name: model, version: String(version) }, opts, { model });
    const tm = (t: ModelMetadataResponseMsg["inputs"][number]): TensorMetadata => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number) });
    return { name: r.name, versions: r.versions, platform: r.platform, inputs: r.inputs.map(tm), outputs: r.outputs.map(tm) };
  }

  /** The model's configuration as the server completed it (defaults filled in). */
  async modelConfig(model: string, version: string | number = "", opts: CallOptions = {}): Promise<ModelConfig> {
    const r = await this.call<{ config: ModelConfig | null }>("ModelConfig", { name: model, version: String(version) }, opts, { model });
    if (!r.config) throw new TritonError(Status.INTERNAL, `empty config for model '${model}'`, { rpc: "ModelConfig", model });
    return r.config;
  }

  async repositoryIndex(args: { ready?: boolean; repositoryName?: string } = {}, opts: CallOptions = {}): Promise<ModelIndexEntry[]> {
    const r = await this.call<{ models: ModelIndexMsg[] }>("RepositoryIndex", { repository_name: args.repositoryName ?? "", ready: args.ready ?? false }, opts);
    return r.models.map((m) => ({ name: m.name, version: m.version, state: m.state, reason: m.reason }));
  }

  /** Statistics of one model (all its ready versions, or one), or of every model when `model` is empty. */
  async modelStatistics(model = "", version: string | number = "", opts: CallOptions = {}): Promise<ModelStatistics[]> {
    const r = await this.call<{ model_stats: ModelStatisticsMsg[] }>("ModelStatistics", { name: model, version: String(version) }, opts, { model });
    return r.model_stats.map((s) => ({
      name: s.name,
      version: s.version,
      lastInference: toNum(s.last_inference),
      inferenceCount: toNum(s.inference_count),
      executionCount: toNum(s.execution_count),
      inferenceStats: {
        success: duration(s.inference_stats?.success),
        fail: duration(s.inference_stats?.fail),
        queue: duration(s.inference_stats?.queue),
        computeInput: duration(s.inference_stats?.compute_input),
        computeInfer: duration(s.inference_stats?.compute_infer),
        computeOutput: duration(s.inference_stats?.compute_output),
        cacheHit: duration(s.inference_stats?.cache_hit),
        cacheMiss: duration(s.inference_stats?.cache_miss),
      },
      batchStats: s.batch_stats.map((b) => ({
        batchSize: toNum(b.batch_size),
        computeInput: duration(b.compute_input),
        computeInfer: duration(b.compute_infer),
        computeOutput: duration(b.compute_output),
      })),
      memoryUsage: s.memory_usage.map((m) => ({ type: m.type, id: toNum(m.id), byteSize: toNum(m.byte_size) })),
    }));
  }

  /** RepositoryModelLoad (Triton allows it only with --model-control-mode=explicit). */
  async loadModel(model: string, args: { config?: string; files?: Record<string, Uint8Array> } = {}, opts: CallOptions = {}): Promise<void> {
    const parameters: Record<string, unknown> = {};
    if (args.config !== undefined) parameters.config = { string_param: args.config };
    for (const [path, bytes] of Object.entries(args.files ?? {})) parameters[`file:${path}`] = { bytes_param: bytes };
    await this.call("RepositoryModelLoad", { repository_name: "", model_name: model, parameters }, opts, { model });
  }

  async unloadModel(model: string, args: { unloadDependents?: boolean } = {}, opts: CallOptions = {}): Promise<void> {
    const parameters = args.unloadDependents === undefined ? {} : { unload_dependents: { bool_param: args.unloadDependents } };
    await this.call("RepositoryModelUnload", { repository_name: "", model_name: model, parameters }, opts, { model });
  }

  // ---- inference ----

  /** One ModelInfer call. Outputs come back by name as typed arrays. */
  async infer(model: string, req: InferRequest): Promise<InferResult> {
    const ctx = { model, requestId: req.requestId };
    const msg = buildInferRequest(model, req);
    const res = await this.call<ModelInferResponseMsg>("ModelInfer", msg, req, ctx);
    return decodeInferResponse(res, { rpc: "ModelInfer", ...ctx });
  }

  /**
   * Low-level ModelInfer with the wire message as is (snake_case fields, raw bytes). For tests and tools
   * that need to send what `infer` would refuse (typed contents, deliberately malformed tensors).
   */
  rawInfer(msg: Partial<ModelInferRequestMsg> & { model_name: string }, opts: CallOptions = {}): Promise<ModelInferResponseMsg> {
    return this.call<ModelInferResponseMsg>("ModelInfer", msg, opts, { model: msg.model_name, requestId: msg.id });
  }

  /** Opens a ModelStreamInfer stream on the shared channel. */
  openStream(opts: StreamOptions = {}): TritonStream {
    const md = this.metadataFor(opts);
    if (opts.grpcErrorMode) md.set("triton_grpc_error", "true");
    // Only an explicit stream deadline applies: the client's defaultTimeoutMs is meant for single calls.
    const deadline = opts.deadline ?? (opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs);
    const call = (this.stub as unknown as Record<string, (md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>>).ModelStreamInfer.call(
      this.stub,
      md,
      deadline === undefined ? {} : { deadline },
    );
    return new TritonStream(call, opts.signal);
  }
}

function abortError(signal: AbortSignal, ctx: TritonErrorContext): TritonError {
  const reason = signal.reason as { name?: string; message?: string } | undefined;
  if (reason?.name === "TimeoutError") return new TritonError(Status.DEADLINE_EXCEEDED, "Deadline exceeded (AbortSignal timeout)", ctx);
  const why = reason?.message ? `: ${reason.message}` : "";
  return new TritonError(Status.CANCELLED, `Cancelled on client${why}`, ctx);
}

// ---- streaming ------------------------------------------------------------------------------------------

export interface StreamOptions {
  /** Aborting cancels the whole stream; every pending request fails. */
  signal?: AbortSignal;
  /** Deadline for the whole stream. */
  timeoutMs?: number;
  deadline?: Date | number;
  metadata?: Record<string, string>;
  /**
   * Sends `triton_grpc_error: true`: the server ends the stream with a real gRPC status on the first error
   * instead of an in-band error_message (Triton 24.08+).
   */
  grpcErrorMode?: boolean;
}

interface Pending {
  model: string;
  resolve: (r: InferResult) => void;
  reject: (e: TritonError) => void;
  cleanup: () => void;
}

/**
 * A bidirectional ModelStreamInfer stream. Many requests may be in flight; responses are matched to requests
 * by request id (generated when the request has none). Meant for non-decoupled models: each request gets
 * exactly one response (Triton marks it `triton_final_response`).
 */
export class TritonStream {
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private finished = false;
  private failure?: TritonError;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly onAbort = () => this.cancel();

  constructor(
    private readonly call: grpc.ClientDuplexStream<unknown, unknown>,
    private readonly signal?: AbortSignal,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    call.on("data", (m: ModelStreamInferResponseMsg) => this.onMessage(m));
    call.on("error", (e: grpc.ServiceError) => {
      const err = signal?.aborted && e.code === Status.CANCELLED ? abortError(signal, { rpc: "ModelStreamInfer" }) : toTritonError(e, { rpc: "ModelStreamInfer" });
      this.finish(err);
    });
    call.on("end", () => this.finish());
    call.on("close", () => this.finish());
    if (signal?.aborted) queueMicrotask(() => this.cancel());
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private onMessage(m: ModelStreamInferResponseMsg): void {
    const id = m.infer_response?.id ?? "";
    const p = this.pending.get(id);
    if (!p) return; // timed out or cancelled locally, or a later response of a decoupled model
    this.pending.delete(id);
    p.cleanup();
    if (m.error_message) {
      p.reject(new TritonError(codeForMessage(m.error_message), m.error_message, { rpc: "ModelStreamInfer", model: p.model, requestId: id, inBand: true }));
      return;
    }
    try {
      p.resolve(decodeInferResponse(m.infer_response as ModelInferResponseMsg, { rpc: "ModelStreamInfer", model: p.model, requestId: id }));
    } catch (e) {
      p.reject(toTritonError(e, { rpc: "ModelStreamInfer", model: p.model, requestId: id }));
    }
  }

  private finish(err?: TritonError): void {
    if (this.finished) return;
    this.finished = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.failure = err;
    const e = err ?? new TritonError(Status.UNAVAILABLE, "stream ended before the response arrived", { rpc: "ModelStreamInfer" });
    for (const [id, p] of this.pending) {
      p.cleanup();
      p.reject(new TritonError(e.code, e.details, { rpc: "ModelStreamInfer", model: p.model, requestId: id, metadata: e.metadata }));
    }
    this.pending.clear();
    this.resolveDone();
  }

  /** Sends one request on the stream and resolves with its response. */
  infer(model: string, req: InferRequest): Promise<InferResult> {
    if (this.finished) {
      const e = this.failure ?? new TritonError(Status.UNAVAILABLE, "stream is closed");
      return Promise.reject(new TritonError(e.code, e.details, { rpc: "ModelStreamInfer", model, requestId: req.requestId }));
    }
    const id = req.requestId ?? `s${this.nextId++}`;
    if (this.pending.has(id)) {
      return Promise.reject(new TritonError(Status.INVALID_ARGUMENT, `request id '${id}' is already in flight on this stream`, { model, requestId: id }));
    }
    let msg: ModelInferRequestMsg;
    try {
      msg = buildInferRequest(model, { ...req, requestId: id });
    } catch (e) {
      return Promise.reject(toTritonError(e, { rpc: "ModelStreamInfer", model, requestId: id }));
    }
    const ctx = { rpc: "ModelStreamInfer", model, requestId: id };
    return new Promise<InferResult>((resolve, reject) => {
      const signal = req.signal;
      if (signal?.aborted) {
        reject(abortError(signal, ctx));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const drop = (e: TritonError) => {
        if (this.pending.get(id) !== entry) return;
        this.pending.delete(id);
        entry.cleanup();
        reject(e);
      };
      const onAbort = () => drop(abortError(signal as AbortSignal, ctx));
      const entry: Pending = {
        model,
        resolve,
        reject,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      const deadlineMs = req.deadline !== undefined ? new Date(req.deadline).getTime() - Date.now() : req.timeoutMs;
      if (deadlineMs !== undefined) {
        timer = setTimeout(() => drop(new TritonError(Status.DEADLINE_EXCEEDED, "Deadline exceeded", ctx)), Math.max(0, deadlineMs));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, entry);
      this.call.write(msg);
    });
  }

  /** Half-closes the stream and waits until the server has answered everything and ended it. */
  async end(): Promise<void> {
    if (!this.finished) this.call.end();
    await this.done;
  }

  /** Cancels the stream; pending requests fail with CANCELLED. */
  cancel(): void {
    if (this.finished) return;
    this.call.cancel();
  }

  /** Resolves once the stream has ended (normally, by error or by cancellation). */
  get closed(): Promise<void> {
    return this.done;
  }
}
