// Triton's sequence batcher with implicit state for one model version: a sequence's requests run in order,
// one at a time, with the START/END/READY/CORRID control inputs filled in and the state outputs of one
// step fed back as the state inputs of the next; the state is released at END or after
// max_sequence_idle_microseconds. A state with use_same_buffer_for_input_output is handed to the model
// instance without a copy (its buffer becomes the model's, as Triton shares one buffer), which matters
// for states of hundreds of megabytes such as the cached transformer's.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { serializeBytes } from "../triton/codec";
import { datatypeOfConfig, type DataType } from "../triton/datatypes";
import { Status } from "../triton/errors";
import type { SequenceControl, SequenceState } from "../triton/model-config";
import { zeroTensor } from "./batch-tensors";
import { cancelledError, stoppingError, type Batcher, type Job } from "./batcher";
import type { Executor, RawTensor } from "./executor";
import type { ModelVersion } from "./model";
import { RpcError, inSequence, invalidArg, type SequenceId } from "./request";
import { nowNs } from "./stats";

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

export class SequenceBatcher implements Batcher {
  private readonly seqs = new Map<string, Sequence>();
  private readonly ready: Sequence[] = [];
  private readonly idleMs: number;
  private readonly batchDim: boolean;
  /** State inputs passed in place: shared buffer, and the state output is not also a response output. */
  private readonly inPlace: ReadonlySet<string>;
  private stopped = false;
  private initial?: Map<string, RawTensor>;

  constructor(private readonly mv: ModelVersion) {
    const sb = mv.config.sequence_batching;
    this.idleMs = Math.max(1, Math.round((sb?.max_sequence_idle_microseconds ?? 1_000_000) / 1000));
    this.batchDim = mv.config.max_batch_size > 0;
    const responseOutputs = new Set(mv.config.output.map((o) => o.name));
    this.inPlace = new Set((sb?.state ?? []).filter((s) => s.use_same_buffer_for_input_output && !responseOutputs.has(s.output_name)).map((s) => s.input_name));
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
      throw stoppingError();
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

  /** A sequence's own copy of the initial states (a state passed in place is given away). */
  private async initialStates(): Promise<Map<string, RawTensor>> {
    if (!this.initial) {
      const m = new Map<string, RawTensor>();
      for (const st of this.mv.config.sequence_batching?.state ?? []) m.set(st.input_name, await this.initialState(st));
      this.initial = m;
    }
    return new Map([...this.initial].map(([k, t]) => [k, { ...t, raw: t.raw.slice() }]));
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
      donate: this.inPlace,
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
      for (const j of s.queue.splice(0)) j.reject(stoppingError());
    }
    this.seqs.clear();
    this.ready.length = 0;
  }
}
