// One loaded model version of the embedded backend: its instances (executors), its scheduler and its
// statistics. Schedulers follow Triton's: without dynamic batching each request runs alone; the dynamic
// batcher merges requests with equal non-batch shapes up to max_batch_size, preferring
// preferred_batch_size and waiting at most max_queue_delay_microseconds; the sequence batcher routes a
// sequence's requests in order and keeps implicit state per sequence id.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { serializeBytes } from "../triton/codec";
import { ELEMENT_SIZE, datatypeOfConfig, elementCount, type DataType } from "../triton/datatypes";
import { Status } from "../triton/errors";
import type { ModelConfig, ModelQueuePolicy, SequenceControl, SequenceState } from "../triton/model-config";
import type { Executor, RawTensor } from "./executor";
import { RpcError, inSequence, invalidArg, type PreparedRequest, type SequenceId } from "./request";
import { ModelStats, nowNs } from "./stats";

export type VersionState = "LOADING" | "READY" | "UNAVAILABLE" | "UNLOADING";

export interface Outputs {
  /** Output tensors in response order (config order, requested only). */
  tensors: { name: string; tensor: RawTensor }[];
}

interface Job {
  req: PreparedRequest;
  receivedNs: bigint;
  enqueuedNs: bigint;
  signal: AbortSignal;
  resolve: (o: Outputs) => void;
  reject: (e: Error) => void;
  /** Queue timeout deadline (ns), 0 = none. */
  timeoutAtNs: bigint;
  timeoutReject: boolean;
  level: number;
  settled: boolean;
  onAbort?: () => void;
}

function cancelledError(): RpcError {
  return new RpcError(Status.CANCELLED, "Request was cancelled");
}

// ---- tensor plumbing ------------------------------------------------------------------------------------

/** Concatenates tensors along dimension 0 (raw row-major bytes concatenate; BYTES elements too). */
function concatBatch(parts: RawTensor[]): RawTensor {
  if (parts.length === 1) return parts[0];
  let total = 0;
  let rows = 0;
  for (const p of parts) {
    total += p.raw.byteLength;
    rows += p.shape[0];
  }
  const raw = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    raw.set(p.raw, pos);
    pos += p.raw.byteLength;
  }
  return { datatype: parts[0].datatype, shape: [rows, ...parts[0].shape.slice(1)], raw };
}

/** Splits a batched output into per-request slices of `sizes` rows (views, no copies). */
function splitBatch(t: RawTensor, sizes: number[], name: string): RawTensor[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (sizes.length === 1) return [t];
  if (t.shape.length === 0 || t.shape[0] !== total) {
    throw new RpcError(Status.INTERNAL, `output '${name}' has shape [${t.shape.join(",")}], expected a batch dimension of ${total}`);
  }
  const rest = t.shape.slice(1);
  const perRow = elementCount(rest);
  const out: RawTensor[] = [];
  if (t.datatype === "BYTES") {
    const dv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
    let pos = 0;
    for (const s of sizes) {
      const start = pos;
      for (let e = 0; e < s * perRow; e++) pos += 4 + dv.getUint32(pos, true);
      out.push({ datatype: t.datatype, shape: [s, ...rest], raw: t.raw.subarray(start, pos) });
    }
    return out;
  }
  const rowBytes = perRow * ELEMENT_SIZE[t.datatype];
  let pos = 0;
  for (const s of sizes) {
    out.push({ datatype: t.datatype, shape: [s, ...rest], raw: t.raw.subarray(pos, pos + s * rowBytes) });
    pos += s * rowBytes;
  }
  return out;
}

function zeroTensor(datatype: DataType, shape: number[]): RawTensor {
  const n = elementCount(shape);
  if (datatype === "BYTES") return { datatype, shape, raw: new Uint8Array(4 * n) }; // n empty strings
  return { datatype, shape, raw: new Uint8Array(n * ELEMENT_SIZE[datatype]) };
}

function scalarControl(datatype: DataType, shape: number[], value: number | boolean | bigint | string): RawTensor {
  switch (datatype) {
    case "INT32":
      return { datatype, shape, raw: new Uint8Array(Int32Array.of(Number(value)).buffer) };
    case "UINT32":
      return { datatype, shape, raw: new Uint8Array(Uint32Array.of(Number(value)).buffer) };
    case "INT64":
      return { datatype, shape, raw: new Uint8Array(BigInt64Array.of(BigInt(value as number)).buffer) };
    case "UINT64":
      return { datatype, shape, raw: new Uint8Array(BigUint64Array.of(BigInt(value as number)).buffer) };
    case "FP32":
      return { datatype, shape, raw: new Uint8Array(Float32Array.of(Number(value)).buffer) };
    case "BOOL":
      return { datatype, shape, raw: Uint8Array.of(value ? 1 : 0) };
    case "BYTES":
      return { datatype, shape, raw: serializeBytes([String(value)]) };
    default:
      throw new RpcError(Status.INTERNAL, `unsupported control datatype ${datatype}`);
  }
}

// ---- model version --------------------------------------------------------------------------------------

export interface ModelVersionOptions {
  modelDir: string;
  log?: (msg: string) => void;
}

export class ModelVersion {
  state: VersionState = "LOADING";
  reason = "";
  readonly stats = new ModelStats();
  private instances: Executor[] = [];
  private idle: Executor[] = [];
  private scheduler?: Scheduler;
  private running = 0;
  private closing = false;
  private drained?: () => void;

  constructor(
    readonly config: ModelConfig,
    readonly version: number,
    readonly opts: ModelVersionOptions,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** Takes ownership of the loaded instances and makes the version ready (after warmup). */
  async start(instances: Executor[]): Promise<void> {
    this.instances = instances;
    this.idle = [...instances];
    this.scheduler = this.config.sequence_batching ? new SequenceScheduler(this) : new BatchScheduler(this);
    await this.warmup();
    this.state = "READY";
  }

  /** Runs the request through the model's scheduler. Rejects with RpcError for Triton-visible failures. */
  infer(req: PreparedRequest, signal: AbortSignal, receivedNs: bigint): Promise<Outputs> {
    if (this.state !== "READY" || !this.scheduler) {
      return Promise.reject(new RpcError(Status.UNAVAILABLE, `Request for unknown model: '${this.name}' version ${this.version} is not at ready state`));
    }
    const scheduler = this.scheduler;
    return new Promise<Outputs>((resolve, reject) => {
      const job: Job = {
        req,
        receivedNs,
        enqueuedNs: nowNs(),
        signal,
        resolve: (o) => {
          if (job.settled) return;
          job.settled = true;
          cleanup();
          resolve(o);
        },
        reject: (e) => {
          if (job.settled) return;
          job.settled = true;
          cleanup();
          this.stats.failed(receivedNs);
          reject(e);
        },
        timeoutAtNs: 0n,
        timeoutReject: true,
        level: 0,
        settled: false,
      };
      const cleanup = () => {
        if (job.onAbort) signal.removeEventListener("abort", job.onAbort);
      };
      try {
        scheduler.enqueue(job);
      } catch (e) {
        job.reject(e as Error);
      }
    });
  }

  // -- instances --

  acquire(): Executor | undefined {
    return this.closing ? undefined : this.idle.pop();
  }

  release(ex: Executor): void {
    this.idle.push(ex);
  }

  get hasIdle(): boolean {
    return !this.closing && this.idle.length > 0;
  }

  /** Runs one model execution for `jobs` on `ex`, resolving each job. Sequence extras come from `extra`. */
  async execute(
    ex: Executor,
    jobs: Job[],
    extra?: { inputs: Map<string, RawTensor>; outputs: string[]; onOutputs: (o: Map<string, RawTensor>) => void },
  ): Promise<void> {
    this.running++;
    const dispatchedNs = nowNs();
    try {
      const t0 = nowNs();
      const inputs = new Map<string, RawTensor>();
      for (const name of jobs[0].req.inputs.keys()) inputs.set(name, concatBatch(jobs.map((j) => j.req.inputs.get(name) as RawTensor)));
      if (extra) for (const [k, v] of extra.inputs) inputs.set(k, v);
      const wanted = new Set<string>();
      for (const j of jobs) for (const n of j.req.requested) wanted.add(n);
      const fetch = this.config.output.map((o) => o.name).filter((n) => wanted.has(n));
      if (extra) fetch.push(...extra.outputs);
      const t1 = nowNs();
      const outputs = await ex.run(inputs, fetch);
      const t2 = nowNs();
      extra?.onOutputs(outputs);
      const sizes = jobs.map((j) => (this.config.max_batch_size > 0 ? j.req.batchSize : 1));
      const perJob: Outputs[] = jobs.map(() => ({ tensors: [] }));
      for (const o of this.config.output) {
        if (!wanted.has(o.name)) continue;
        const t = outputs.get(o.name);
        if (!t) throw new RpcError(Status.INTERNAL, `output '${o.name}' was not produced by model '${this.name}'`);
        const expectDt = datatypeOfConfig(o.data_type);
        if (t.datatype !== expectDt) {
          throw new RpcError(Status.INTERNAL, `output '${o.name}' of model '${this.name}' is ${t.datatype}, config says ${expectDt}`);
        }
        const parts = this.config.max_batch_size > 0 ? splitBatch(t, sizes, o.name) : [t];
        jobs.forEach((j, i) => {
          if (!j.req.requested.includes(o.name)) return;
          let part = parts[i];
          if (o.reshape) {
            const vars = o.reshape.shape.map((d, k) => (d === -1 ? part.shape[k + (this.config.max_batch_size > 0 ? 1 : 0)] : undefined)).filter((v): v is number => v !== undefined);
            const shape = o.dims.map((d) => (d === -1 ? (vars.shift() as number) : d));
            part = { ...part, shape: this.config.max_batch_size > 0 ? [part.shape[0], ...shape] : shape };
          }
          perJob[i].tensors.push({ name: o.name, tensor: part });
        });
      }
      const t3 = nowNs();
      const total = sizes.reduce((a, b) => a + b, 0);
      this.stats.execution(this.config.max_batch_size > 0 ? total : 1, t1 - t0, t2 - t1, t3 - t2);
      jobs.forEach((j, i) => {
        if (j.settled) return; // cancelled while running: the result is dropped
        this.stats.succeeded({ receivedNs: j.receivedNs, enqueuedNs: j.enqueuedNs, dispatchedNs, inputNs: t1 - t0, inferNs: t2 - t1, outputNs: t3 - t2, doneNs: nowNs() });
        j.resolve(perJob[i]);
      });
    } catch (e) {
      const err = e instanceof RpcError ? e : new RpcError(Status.INTERNAL, `onnx runtime error: ${(e as Error).message}`);
      for (const j of jobs) j.reject(err);
    } finally {
      this.running--;
      if (this.running === 0) this.drained?.();
    }
  }

  // -- warmup --

  private async warmup(): Promise<void> {
    const warmups = this.config.model_warmup as {
      name: string;
      batch_size: number;
      count: number;
      inputs: Record<string, { data_type: string; dims: number[]; zero_data?: boolean; random_data?: boolean; input_data_file?: string }>;
    }[];
    for (const w of warmups) {
      const inputs = new Map<string, RawTensor>();
      for (const [name, spec] of Object.entries(w.inputs)) {
        const dt = datatypeOfConfig(spec.data_type);
        if (dt === "INVALID") throw new Error(`warmup '${w.name}': input '${name}' has no data_type`);
        const shape = this.config.max_batch_size > 0 ? [Math.max(1, w.batch_size), ...spec.dims] : spec.dims;
        let t = zeroTensor(dt, shape);
        if (spec.random_data && dt !== "BYTES") randomFillSync(t.raw);
        if (spec.input_data_file) {
          const bytes = await readFile(join(this.opts.modelDir, "warmup", spec.input_data_file));
          t = { datatype: dt, shape, raw: new Uint8Array(bytes) };
        }
        inputs.set(name, t);
      }
      const outs = this.config.output.map((o) => o.name);
      for (const ex of this.instances) {
        for (let i = 0; i < Math.max(1, w.count); i++) await ex.run(inputs, outs);
      }
    }
  }

  // -- sequences (introspection for tests and the debug API) --

  get activeSequences(): number {
    return this.scheduler instanceof SequenceScheduler ? this.scheduler.size : 0;
  }

  get queued(): number {
    return this.scheduler?.queued ?? 0;
  }

  async close(): Promise<void> {
    this.state = "UNLOADING";
    this.scheduler?.shutdown();
    if (this.running > 0) {
      await Promise.race([new Promise<void>((r) => (this.drained = r)), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    this.closing = true;
    await Promise.all(this.instances.map((i) => i.close().catch(() => undefined)));
    this.instances = [];
    this.idle = [];
  }
}

interface Scheduler {
  enqueue(job: Job): void;
  readonly queued: number;
  shutdown(): void;
}

// ---- dynamic batcher (and the plain scheduler when batching is off) -------------------------------------

class BatchScheduler implements Scheduler {
  private readonly queue: Job[] = [];
  private timer?: NodeJS.Timeout;
  private readonly batching: boolean;
  private readonly maxBatch: number;
  private readonly preferred: Set<number>;
  private readonly maxPreferred: number;
  private readonly delayNs: bigint;
  private readonly levels: number;
  private readonly defaultLevel: number;
  private stopped = false;

  constructor(private readonly mv: ModelVersion) {
    const c = mv.config;
    const db = c.dynamic_batching;
    this.batching = !!db && c.max_batch_size > 0;
    this.maxBatch = Math.max(1, c.max_batch_size);
    this.preferred = new Set(db?.preferred_batch_size ?? []);
    this.maxPreferred = this.preferred.size ? Math.max(...this.preferred) : this.maxBatch;
    this.delayNs = BigInt(db?.max_queue_delay_microseconds ?? 0) * 1000n;
    this.levels = db?.priority_levels ?? 0;
    this.defaultLevel = db?.default_priority_level ?? 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  private policy(level: number): ModelQueuePolicy | null {
    const db = this.mv.config.dynamic_batching;
    if (!db) return null;
    return db.priority_queue_policy[String(level)] ?? db.default_queue_policy ?? null;
  }

  enqueue(job: Job): void {
    if (this.stopped) throw new RpcError(Status.UNAVAILABLE, "Server is stopping, scheduler for model has stopped accepting new inference requests");
    const p = job.req.params;
    const level = this.levels > 0 ? (p.priority === 0 || p.priority > this.levels ? this.defaultLevel : p.priority) : 0;
    job.level = level;
    const policy = this.policy(level);
    if (policy && policy.max_queue_size > 0) {
      const atLevel = this.queue.filter((j) => j.level === level).length;
      if (atLevel >= policy.max_queue_size) throw new RpcError(Status.UNAVAILABLE, `${job.req.logPrefix}Exceeds maximum queue size`);
    }
    if (policy) {
      const us = policy.allow_timeout_override && p.timeoutUs > 0 ? p.timeoutUs : policy.default_timeout_microseconds;
      if (us > 0) {
        job.timeoutAtNs = job.enqueuedNs + BigInt(us) * 1000n;
        job.timeoutReject = policy.timeout_action !== "DELAY";
      }
    }
    // Insert by priority level (lower value = higher priority), FIFO within a level.
    let at = this.queue.length;
    while (at > 0 && this.queue[at - 1].level > level) at--;
    this.queue.splice(at, 0, job);
    job.onAbort = () => {
      const i = this.queue.indexOf(job);
      if (i >= 0) {
        this.queue.splice(i, 1);
        job.reject(cancelledError());
        this.pump();
      }
    };
    if (job.signal.aborted) job.onAbort();
    else job.signal.addEventListener("abort", job.onAbort, { once: true });
    this.pump();
  }

  private expire(now: bigint): void {
    for (let i = 0; i < this.queue.length; ) {
      const j = this.queue[i];
      if (j.timeoutAtNs > 0n && now >= j.timeoutAtNs) {
        if (j.timeoutReject) {
          this.queue.splice(i, 1);
          j.reject(new RpcError(Status.UNAVAILABLE, "Request timeout expired"));
          continue;
        }
        // DELAY: deprioritise behind everything else of its level.
        j.timeoutAtNs = 0n;
      }
      i++;
    }
  }

  /** Decides how many queued jobs form the next batch, or how long to wait for more (Triton's GetDynamicBatch). */
  private form(now: bigint): { count: number } | { waitNs: bigint } {
    if (!this.batching) return { count: 1 };
    const head = this.queue[0];
    let pending = 0;
    let count = 0;
    let bestCount = 0;
    let sendNow = false;
    let oldest = head.enqueuedNs;
    for (const j of this.queue) {
      const bs = j.req.batchSize;
      if (count > 0 && pending + bs > this.maxPreferred) {
        sendNow = true;
        break;
      }
      if (pending + bs > this.maxBatch) {
        sendNow = true;
        break;
      }
      if (j.req.batchKey !== head.req.batchKey) {
        sendNow = true;
        break;
      }
      pending += bs;
      count++;
      if (j.enqueuedNs < oldest) oldest = j.enqueuedNs;
      if (this.preferred.has(pending)) bestCount = count;
    }
    const delayExceeded = this.delayNs !== 0n && now - oldest >= this.delayNs;
    if (bestCount > 0 && !delayExceeded) return { count: bestCount };
    if (sendNow || pending >= this.maxPreferred) return { count };
    if (delayExceeded || this.delayNs === 0n) return { count };
    return { waitNs: this.delayNs - (now - oldest) };
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = nowNs();
    this.expire(now);
    while (this.queue.length > 0 && this.mv.hasIdle) {
      const d = this.form(now);
      if ("waitNs" in d) {
        this.timer = setTimeout(() => this.pump(), Math.max(1, Number((d.waitNs + 999_999n) / 1_000_000n)));
        break;
      }
      const jobs = this.queue.splice(0, d.count);
      const ex = this.mv.acquire() as Executor;
      void this.mv.execute(ex, jobs).finally(() => {
        this.mv.release(ex);
        this.pump();
      });
    }
    // Wake up for the closest queue timeout.
    if (!this.timer) {
      let next = 0n;
      for (const j of this.queue) if (j.timeoutAtNs > 0n && (next === 0n || j.timeoutAtNs < next)) next = j.timeoutAtNs;
      if (next > 0n) this.timer = setTimeout(() => this.pump(), Math.max(0, Number((next - now) / 1_000_000n)) + 1);
    }
  }

  shutdown(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const j of this.queue.splice(0)) j.reject(new RpcError(Status.UNAVAILABLE, "Server is stopping, scheduler for model has stopped accepting new inference requests"));
  }
}

// ---- sequence batcher with implicit state ---------------------------------------------------------------

interface Sequence {
  key: string;
  id: SequenceId;
  queue: Job[];
  running: boolean;
  /** Implicit state by state input name; undefined until the first execution (or after START). */
  state?: Map<string, RawTensor>;
  idleTimer?: NodeJS.Timeout;
  lastUseNs: bigint;
}

class SequenceScheduler implements Scheduler {
  private readonly seqs = new Map<string, Sequence>();
  private readonly ready: Sequence[] = [];
  private readonly idleMs: number;
  private readonly batchDim: boolean;
  private stopped = false;
  private initial?: Map<string, RawTensor>;

  constructor(private readonly mv: ModelVersion) {
    const sb = mv.config.sequence_batching;
    this.idleMs = Math.max(1, Math.round((sb?.max_sequence_idle_microseconds ?? 1_000_000) / 1000));
    this.batchDim = mv.config.max_batch_size > 0;
  }

  get size(): number {
    return this.seqs.size;
  }

  get queued(): number {
    let n = 0;
    for (const s of this.seqs.values()) n += s.queue.length;
    return n;
  }

  enqueue(job: Job): void {
    const p = job.req.params;
    const model = this.mv.name;
    if (this.stopped && p.sequenceStart) {
      throw new RpcError(Status.UNAVAILABLE, "Server is stopping, scheduler for model has stopped accepting new inference requests");
    }
    if (!inSequence(p)) throw invalidArg(`inference request to model '${model}' must specify a non-zero or non-empty correlation ID`);
    if (job.req.batchSize > 1) throw invalidArg(`inference request to model '${model}' must specify batch-size 1 due to requirements of sequence batcher`);
    this.checkCorrIdType(job);
    const key = typeof p.sequenceId === "string" ? `s:${p.sequenceId}` : `n:${p.sequenceId}`;
    let seq = this.seqs.get(key);
    if (!seq && !p.sequenceStart) {
      throw invalidArg(`inference request for sequence ${String(p.sequenceId)} to model '${model}' must specify the START flag on the first request of the sequence`);
    }
    if (!seq) {
      seq = { key, id: p.sequenceId, queue: [], running: false, lastUseNs: nowNs() };
      this.seqs.set(key, seq);
    }
    if (seq.idleTimer) {
      clearTimeout(seq.idleTimer);
      seq.idleTimer = undefined;
    }
    seq.lastUseNs = nowNs();
    seq.queue.push(job);
    const s = seq;
    job.onAbort = () => {
      const i = s.queue.indexOf(job);
      if (i >= 0) {
        s.queue.splice(i, 1);
        job.reject(cancelledError());
        if (s.queue.length === 0 && !s.running) {
          const r = this.ready.indexOf(s);
          if (r >= 0) this.ready.splice(r, 1);
          this.armIdle(s);
        }
      }
    };
    if (job.signal.aborted) job.onAbort();
    else job.signal.addEventListener("abort", job.onAbort, { once: true });
    if (!seq.running && seq.queue.length === 1) this.ready.push(seq);
    this.pump();
  }

  private checkCorrIdType(job: Job): void {
    const ctl = this.control("CONTROL_SEQUENCE_CORRID");
    if (!ctl) return;
    const want = datatypeOfConfig(ctl.control.data_type);
    const isString = typeof job.req.params.sequenceId === "string";
    const ok = isString ? want === "BYTES" : ["UINT64", "INT64", "UINT32", "INT32"].includes(want);
    if (!ok) {
      throw invalidArg(
        `${job.req.logPrefix}sequence batching control '${ctl.name}' data-type is '${isString ? "BYTES" : "UINT64"}', but model '${this.mv.name}' expects '${want}'`,
      );
    }
  }

  private control(kind: SequenceControl["kind"]): { name: string; control: SequenceControl } | undefined {
    for (const ci of this.mv.config.sequence_batching?.control_input ?? []) {
      const c = ci.control.find((x) => x.kind === kind);
      if (c) return { name: ci.name, control: c };
    }
    return undefined;
  }

  private armIdle(seq: Sequence): void {
    if (seq.idleTimer) clearTimeout(seq.idleTimer);
    seq.idleTimer = setTimeout(() => {
      seq.idleTimer = undefined;
      if (!seq.running && seq.queue.length === 0 && this.seqs.get(seq.key) === seq) {
        this.seqs.delete(seq.key); // idle: the sequence and its state are released
      }
    }, this.idleMs);
    seq.idleTimer.unref();
  }

  private async initialStates(): Promise<Map<string, RawTensor>> {
    if (!this.initial) {
      const m = new Map<string, RawTensor>();
      for (const st of this.mv.config.sequence_batching?.state ?? []) m.set(st.input_name, await this.initialState(st));
      this.initial = m;
    }
    return new Map(this.initial);
  }

  private async initialState(st: SequenceState): Promise<RawTensor> {
    const dt = datatypeOfConfig(st.data_type) as DataType;
    const init = st.initial_state[0];
    const base = init ? init.dims : st.dims.map((d) => (d === -1 ? 1 : d));
    const shape = this.batchDim ? [1, ...base] : base;
    if (init?.data_file) {
      const bytes = await readFile(join(this.mv.opts.modelDir, "initial_state", init.data_file));
      return { datatype: dt, shape, raw: new Uint8Array(bytes) };
    }
    return zeroTensor(dt, shape);
  }

  private controls(job: Job): Map<string, RawTensor> {
    const m = new Map<string, RawTensor>();
    const shape = this.batchDim ? [1, 1] : [1];
    const p = job.req.params;
    for (const ci of this.mv.config.sequence_batching?.control_input ?? []) {
      for (const c of ci.control) {
        if (c.kind === "CONTROL_SEQUENCE_CORRID") {
          const dt = datatypeOfConfig(c.data_type) as DataType;
          m.set(ci.name, scalarControl(dt, shape, p.sequenceId));
          continue;
        }
        const on = c.kind === "CONTROL_SEQUENCE_START" ? p.sequenceStart : c.kind === "CONTROL_SEQUENCE_END" ? p.sequenceEnd : true;
        if (c.int32_false_true.length === 2) m.set(ci.name, scalarControl("INT32", shape, c.int32_false_true[on ? 1 : 0]));
        else if (c.fp32_false_true.length === 2) m.set(ci.name, scalarControl("FP32", shape, c.fp32_false_true[on ? 1 : 0]));
        else if (c.bool_false_true.length === 2) m.set(ci.name, scalarControl("BOOL", shape, c.bool_false_true[on ? 1 : 0]));
      }
    }
    return m;
  }

  private pump(): void {
    while (this.ready.length > 0 && this.mv.hasIdle) {
      const seq = this.ready.shift() as Sequence;
      const job = seq.queue.shift();
      if (!job) continue;
      seq.running = true;
      const ex = this.mv.acquire() as Executor;
      void this.run(ex, seq, job).finally(() => {
        this.mv.release(ex);
        seq.running = false;
        seq.lastUseNs = nowNs();
        if (job.req.params.sequenceEnd && seq.queue.length === 0) {
          if (this.seqs.get(seq.key) === seq) this.seqs.delete(seq.key); // END: the state is released
        } else if (seq.queue.length > 0) this.ready.push(seq);
        else this.armIdle(seq);
        this.pump();
      });
    }
  }

  private async run(ex: Executor, seq: Sequence, job: Job): Promise<void> {
    const states = this.mv.config.sequence_batching?.state ?? [];
    try {
      if (job.req.params.sequenceStart || !seq.state) seq.state = await this.initialStates();
    } catch (e) {
      job.reject(new RpcError(Status.INTERNAL, `failed to set up the initial state of model '${this.mv.name}': ${(e as Error).message}`));
      return;
    }
    const inputs = new Map<string, RawTensor>([...seq.state, ...this.controls(job)]);
    const stateOut = states.map((s) => s.output_name);
    await this.mv.execute(ex, [job], {
      inputs,
      outputs: stateOut,
      onOutputs: (outs) => {
        const next = new Map<string, RawTensor>();
        for (const st of states) {
          const t = outs.get(st.output_name);
          if (t) next.set(st.input_name, t);
        }
        seq.state = next;
      },
    });
    if (job.req.params.sequenceEnd) seq.state = undefined;
  }

  shutdown(): void {
    this.stopped = true;
    for (const s of this.seqs.values()) {
      if (s.idleTimer) clearTimeout(s.idleTimer);
      for (const j of s.queue.splice(0)) j.reject(new RpcError(Status.UNAVAILABLE, "Server is stopping, scheduler for model has stopped accepting new inference requests"));
    }
    this.seqs.clear();
    this.ready.length = 0;
  }
}
