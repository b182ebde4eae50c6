// One loaded model version of the embedded backend: its instances (executors), the batcher its config
// asks for (dynamic-batcher.ts, or sequence-batcher.ts with sequence_batching), warmup and statistics.
// A batcher decides which queued requests run together; execute() runs them on one instance.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { datatypeOfConfig } from "../triton/datatypes";
import { Status } from "../triton/errors";
import type { ModelConfig } from "../triton/model-config";
import { concatBatch, splitBatch, zeroTensor } from "./batch-tensors";
import type { Batcher, Job, Outputs } from "./batcher";
import { DynamicBatcher } from "./dynamic-batcher";
import type { Executor, RawTensor } from "./executor";
import { RpcError, type PreparedRequest } from "./request";
import { SequenceBatcher } from "./sequence-batcher";
import { ModelStats, nowNs } from "./stats";

export type VersionState = "LOADING" | "READY" | "UNAVAILABLE" | "UNLOADING";

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
  private batcher?: Batcher;
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
    this.batcher = this.config.sequence_batching ? new SequenceBatcher(this) : new DynamicBatcher(this);
    await this.warmup();
    this.state = "READY";
  }

  /** Runs the request through the model's batcher. Rejects with RpcError for Triton-visible failures. */
  infer(req: PreparedRequest, signal: AbortSignal, receivedNs: bigint): Promise<Outputs> {
    if (this.state !== "READY" || !this.batcher) {
      return Promise.reject(new RpcError(Status.UNAVAILABLE, `Request for unknown model: '${this.name}' version ${this.version} is not at ready state`));
    }
    const batcher = this.batcher;
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
        batcher.enqueue(job);
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

  /**
   * Runs one model execution for `jobs` on `ex`, resolving each job. Sequence extras come from `extra`:
   * state and control inputs, state outputs, and the state inputs the instance may take without a copy.
   */
  async execute(
    ex: Executor,
    jobs: Job[],
    extra?: { inputs: Map<string, RawTensor>; outputs: string[]; onOutputs: (o: Map<string, RawTensor>) => void; donate?: ReadonlySet<string> },
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
      const outputs = await ex.run(inputs, fetch, extra?.donate);
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
    return this.batcher instanceof SequenceBatcher ? this.batcher.size : 0;
  }

  get queued(): number {
    return this.batcher?.queued ?? 0;
  }

  async close(): Promise<void> {
    this.state = "UNLOADING";
    this.batcher?.shutdown();
    if (this.running > 0) {
      await Promise.race([new Promise<void>((r) => (this.drained = r)), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    this.closing = true;
    await Promise.all(this.instances.map((i) => i.close().catch(() => undefined)));
    this.instances = [];
    this.idle = [];
  }
}
