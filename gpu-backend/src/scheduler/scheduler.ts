// Step-level continuous batching.
//
// Requests are admitted into a bounded queue, prepared concurrently (image decoding, VQ encoding: whatever
// `prepare` does), and join the running batch at the next step boundary when a slot is free. The loop runs
// ONE transformer call at a time: it picks a group of running requests that share a sequence-length bucket,
// packs their next step into one contract call, runs it, and hands each request its outputs. Requests leave
// at step boundaries (done, cancelled, past their deadline), which frees their slot for the next one.
//
// Fairness: a request that has not yet run a step leads the next call, so a new request's first step starts
// within about one step time of its arrival (plus its own preparation) even while others are mid-generation;
// otherwise the least recently stepped request leads. The leader's bucket peers fill the call up to the row
// and token limits.
import { bucketFor, DEFAULT_BUCKETS } from "./buckets";
import { engineCallLimits, type CallLimits } from "./call-limits";
import {
  cancelled,
  Code,
  codeOf,
  deadlineExceeded,
  OrchestratorError,
  resourceExhausted,
  toOrchestratorError,
  unavailable,
} from "./errors";
import { longestRow, packStep, unpackStep, type EngineOutputs, type PackedCall, type PackInput, type PackOutput } from "./packer";

/** What the scheduler drives: one request's sampler, one step at a time. */
export interface StepTask {
  /** Steps this request will run at most (for progress and retry hints). */
  readonly totalSteps: number;
  /** Engine inputs of the next step. Called once per step, right before the step's call. */
  engineInputs(): PackInput;
  /** Feeds the step's outputs back; returns after the request's state moved one step. */
  advance(out: PackOutput): void;
  isDone(): boolean;
}

export interface TransformerRunner {
  /** Runs one packed transformer call. `requestId` names the call (Triton request id). */
  runTransformer(call: PackedCall, opts: { requestId: string; signal: AbortSignal }): Promise<EngineOutputs>;
}

export interface StepInfo {
  /** 1-based index of the step just finished. */
  step: number;
  totalSteps: number;
  /** Tokens through the transformer for this request in this step (all its branches). */
  tokens: number;
  /** Engine time of the call this step was part of (shared by the whole batch). */
  engineMs: number;
  /** Requests in that call. */
  batchSize: number;
}

export interface JobCallbacks<T extends StepTask> {
  /** Synchronously at submission; 0 = it can run now. */
  onAccepted?(queuePosition: number): void;
  /** After each step (the task has already advanced). */
  onStep?(task: T, info: StepInfo): void;
  /** Stepping finished; the slot is already free. */
  onDone(task: T): void;
  /** The request failed, was cancelled or ran past its deadline; its slot is already free. */
  onError(err: OrchestratorError): void;
}

export interface Submission<T extends StepTask> extends JobCallbacks<T> {
  requestId: string;
  /** Absolute deadline (Date.now() based); Infinity = none. */
  deadlineAt: number;
  /** Aborted when the caller goes away. */
  signal?: AbortSignal;
  /** Builds the task (may call the engine, e.g. VQ encode); runs right away, while the request waits. */
  prepare(signal: AbortSignal): Promise<T> | T;
}

export interface TickStats {
  batchSize: number;
  rows: number;
  length: number;
  tokens: number;
  engineMs: number;
  orchestratorMs: number;
  /** Wall time from packing start to the last request advanced. */
  stepMs: number;
}

export interface SchedulerOptions {
  runner: TransformerRunner;
  /** Requests stepping at once (slots). */
  maxActive?: number;
  /** Requests waiting for a slot (including those still preparing); beyond it: RESOURCE_EXHAUSTED. */
  maxQueue?: number;
  /** Rows (branches) in one transformer call. */
  maxBatchRows?: number;
  /** Padded tokens (R*L) in one transformer call. */
  maxBatchTokens?: number;
  buckets?: readonly number[];
  /**
   * What one call of row length L may hold (the engine's optimization profiles); default: the TensorRT
   * profiles of engine/repository/profiles.ts. maxBatchRows/maxBatchTokens cap it further.
   */
  callLimits?: (length: number) => CallLimits;
  /** Called after every transformer call. */
  onTick?(stats: TickStats): void;
  /** Called when a request leaves for any reason other than success. */
  onJobError?(requestId: string, err: OrchestratorError): void;
  /** Retry hint floor for RESOURCE_EXHAUSTED. */
  minRetryAfterMs?: number;
  now?: () => number;
}

type JobState = "preparing" | "ready" | "active" | "done";

interface Job<T extends StepTask> {
  seq: number;
  sub: Submission<T>;
  state: JobState;
  task?: T;
  controller: AbortController;
  stepsDone: number;
  lastTick: number;
  bucket: number;
  pending?: PackInput;
  cancelReason?: OrchestratorError;
  /** onError already called (the request may still hold its slot until the step boundary). */
  notified?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  detach?: () => void;
}

export class Scheduler<T extends StepTask = StepTask> {
  readonly maxActive: number;
  readonly maxQueue: number;
  readonly maxBatchRows: number;
  readonly maxBatchTokens: number;
  private readonly buckets: readonly number[];
  private readonly callLimits: (length: number) => CallLimits;
  private readonly runner: TransformerRunner;
  private readonly opts: SchedulerOptions;
  private readonly now: () => number;

  private waiting: Job<T>[] = [];
  private active: Job<T>[] = [];
  private seq = 0;
  private tick = 0;
  private running = false;
  private stopped = false;
  private wakeLoop?: () => void;
  private inFlight?: { jobs: Job<T>[]; controller: AbortController };
  /** Exponential moving average of one call's wall time, for retry hints. */
  private stepEmaMs = 0;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.runner = opts.runner;
    this.maxActive = opts.maxActive ?? 8;
    this.maxQueue = opts.maxQueue ?? 32;
    this.maxBatchRows = opts.maxBatchRows ?? 32;
    this.maxBatchTokens = opts.maxBatchTokens ?? 1 << 18;
    this.buckets = opts.buckets ?? DEFAULT_BUCKETS;
    this.callLimits = opts.callLimits ?? engineCallLimits;
    this.now = opts.now ?? Date.now;
  }

  private get freeSlots(): number {
    return Math.max(0, this.maxActive - this.active.length);
  }

  /** Requests waiting for a slot: those admitted (preparing or ready) beyond the free slots. */
  get queueDepth(): number {
    return Math.max(0, this.waiting.length - this.freeSlots);
  }

  /** Requests holding a slot. */
  get activeCount(): number {
    return this.active.length;
  }

  /** Average wall time of one step call so far (ms), 0 before the first. */
  get stepTimeMs(): number {
    return this.stepEmaMs;
  }

  /**
   * Admits a request or throws RESOURCE_EXHAUSTED (with a retry hint) when the queue is full. Callbacks
   * run later; onAccepted runs before submit returns.
   */
  submit(sub: Submission<T>): void {
    if (this.stopped) throw unavailable("orchestrator is shutting down");
    const position = this.queueDepth + (this.waiting.length < this.freeSlots ? 0 : 1);
    if (position > 0 && this.queueDepth >= this.maxQueue) {
      throw resourceExhausted(`queue full (${this.waiting.length} waiting, ${this.active.length} running)`, this.retryHintMs());
    }
    if (sub.signal?.aborted) throw cancelled();
    if (sub.deadlineAt <= this.now()) throw deadlineExceeded("deadline exceeded before admission");

    const job: Job<T> = {
      seq: this.seq++,
      sub,
      state: "preparing",
      controller: new AbortController(),
      stepsDone: 0,
      lastTick: -1,
      bucket: 0,
    };
    this.waiting.push(job);
    sub.onAccepted?.(position);

    if (sub.signal) {
      // The caller's own timeout aborts the signal too (reason: DEADLINE_EXCEEDED); anything else is a cancel.
      const onAbort = () =>
        this.cancel(job, codeOf(sub.signal?.reason) === Code.DeadlineExceeded ? deadlineExceeded("caller's deadline exceeded") : cancelled("caller went away"));
      sub.signal.addEventListener("abort", onAbort, { once: true });
      job.detach = () => sub.signal?.removeEventListener("abort", onAbort);
    }
    if (Number.isFinite(sub.deadlineAt)) {
      const ms = Math.max(0, sub.deadlineAt - this.now());
      job.timer = setTimeout(() => this.cancel(job, deadlineExceeded()), ms);
      job.timer.unref?.();
    }

    void Promise.resolve()
      .then(() => sub.prepare(job.controller.signal))
      .then(
        (task) => {
          if (job.state !== "preparing") return; // cancelled meanwhile
          job.task = task;
          job.state = "ready";
          this.kick();
        },
        (err) => {
          if (job.state !== "preparing") return;
          this.finishWithError(job, toOrchestratorError(err));
        },
      );
  }

  /** Stops accepting, fails everything still queued or running with UNAVAILABLE. */
  async close(): Promise<void> {
    this.stopped = true;
    const all = [...this.waiting, ...this.active];
    for (const j of all) this.cancel(j, unavailable("orchestrator is shutting down"));
    this.inFlight?.controller.abort();
    this.kick();
  }

  /** Estimated wait until a slot frees: the soonest-finishing running request's remaining steps. */
  retryHintMs(): number {
    const floor = this.opts.minRetryAfterMs ?? 500;
    if (this.active.length === 0 || this.stepEmaMs === 0) return floor;
    let minRemaining = Infinity;
    for (const j of this.active) {
      const total = j.task?.totalSteps ?? 0;
      minRemaining = Math.min(minRemaining, Math.max(1, total - j.stepsDone));
    }
    // Every running bucket group takes turns, so one step of a request costs about one call per group.
    const groups = new Set(this.active.map((j) => j.bucket)).size || 1;
    const est = minRemaining * this.stepEmaMs * groups * (1 + this.waiting.length / Math.max(1, this.maxActive));
    return Math.min(120_000, Math.max(floor, Math.round(est)));
  }

  private cancel(job: Job<T>, reason: OrchestratorError): void {
    if (job.state === "done") return;
    if (job.state === "active") {
      // The caller hears at once; the slot frees at the next step boundary (an in-flight call made only
      // of cancelled requests is aborted).
      job.cancelReason ??= reason;
      this.notifyError(job, job.cancelReason);
      const f = this.inFlight;
      if (f && f.jobs.includes(job) && f.jobs.every((j) => j.cancelReason)) f.controller.abort();
      this.kick();
      return;
    }
    // Waiting (preparing or ready): leave right away.
    job.controller.abort();
    this.finishWithError(job, reason);
  }

  private removeFrom(list: Job<T>[], job: Job<T>): void {
    const i = list.indexOf(job);
    if (i >= 0) list.splice(i, 1);
  }

  private release(job: Job<T>): void {
    job.state = "done";
    if (job.timer) clearTimeout(job.timer);
    job.detach?.();
    this.removeFrom(this.waiting, job);
    this.removeFrom(this.active, job);
    this.kick();
  }

  private finishWithError(job: Job<T>, err: OrchestratorError): void {
    if (job.state === "done") return;
    this.release(job);
    this.notifyError(job, err);
  }

  private notifyError(job: Job<T>, err: OrchestratorError): void {
    if (job.notified) return;
    job.notified = true;
    this.opts.onJobError?.(job.sub.requestId, err);
    try {
      job.sub.onError(err);
    } catch {
      // listener errors must not break the loop
    }
  }

  private kick(): void {
    const w = this.wakeLoop;
    this.wakeLoop = undefined;
    w?.();
    if (!this.running && !this.stopped) {
      this.running = true;
      void this.loop();
    }
  }

  /** Moves ready requests (in arrival order) into free slots. */
  private admit(): void {
    for (let i = 0; i < this.waiting.length && this.active.length < this.maxActive; ) {
      const job = this.waiting[i];
      if (job.state !== "ready") {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      job.state = "active";
      this.active.push(job);
    }
  }

  /** Drops active requests that were cancelled or ran past their deadline. */
  private sweep(): void {
    const now = this.now();
    for (const job of [...this.active]) {
      if (!job.cancelReason && job.sub.deadlineAt <= now) job.cancelReason = deadlineExceeded();
      if (job.cancelReason) this.finishWithError(job, job.cancelReason);
    }
  }

  private inputsOf(job: Job<T>): PackInput {
    if (!job.pending) {
      job.pending = job.task!.engineInputs();
      job.bucket = bucketFor(longestRow(job.pending), this.buckets);
    }
    return job.pending;
  }

  /** Picks the next call's requests: a leader (new first, else least recently stepped) plus bucket peers. */
  private pickGroup(): Job<T>[] {
    for (const j of [...this.active]) {
      try {
        this.inputsOf(j);
      } catch (err) {
        // A task that cannot produce its inputs fails alone.
        this.finishWithError(j, new OrchestratorError(Code.Internal, `step inputs failed: ${toOrchestratorError(err).message}`));
      }
    }
    if (this.active.length === 0) return [];
    const order = [...this.active].sort((a, b) => {
      const an = a.stepsDone === 0 ? 0 : 1;
      const bn = b.stepsDone === 0 ? 0 : 1;
      if (an !== bn) return an - bn;
      if (a.lastTick !== b.lastTick) return a.lastTick - b.lastTick;
      return a.seq - b.seq;
    });
    const leader = order[0];
    const L = leader.bucket;
    const lim = this.callLimits(L);
    const maxRows = Math.min(lim.maxRows, this.maxBatchRows);
    const group: Job<T>[] = [];
    let rows = 0, images = 0, texts = 0;
    for (const j of order) {
      if (j.bucket !== L) continue;
      const inp = j.pending!;
      const k = inp.branches.length;
      const isImage = inp.mode === "image";
      if (group.length > 0) {
        if (rows + k > maxRows || (rows + k) * L > this.maxBatchTokens) continue;
        if (isImage ? images + 1 > lim.maxImageRequests : texts + 1 > lim.maxTextRequests) continue;
      }
      group.push(j);
      rows += k;
      if (isImage) images++;
      else texts++;
    }
    return group;
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        this.sweep();
        this.admit();
        if (this.active.length === 0) {
          if (this.waiting.length === 0) return; // idle: the next submit restarts the loop
          await new Promise<void>((resolve) => (this.wakeLoop = resolve));
          continue;
        }
        await this.step();
        // Let I/O (new arrivals, cancellations, stream writes) run between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      // Never leave requests hanging on a scheduler bug: fail everything that is running.
      const e = new OrchestratorError(Code.Internal, `scheduler failed: ${toOrchestratorError(err).message}`);
      for (const j of [...this.active]) this.finishWithError(j, e);
    } finally {
      // Synchronously with the loop's end, so a kick() right after starts a new loop.
      this.running = false;
      if (!this.stopped && (this.active.length > 0 || this.waiting.some((j) => j.state === "ready"))) this.kick();
    }
  }

  private async step(): Promise<void> {
    const t0 = performance.now();
    const group = this.pickGroup();
    if (group.length === 0) return;
    let call: PackedCall;
    try {
      const length = Math.max(...group.map((j) => Math.max(j.bucket, bucketFor(longestRow(j.pending!), this.buckets))));
      call = packStep(
        group.map((j) => j.pending!),
        length,
      );
    } catch (err) {
      const e = new OrchestratorError(Code.Internal, `bad step inputs: ${toOrchestratorError(err).message}`);
      for (const j of group) this.finishWithError(j, e);
      return;
    }
    const tick = this.tick++;
    const controller = new AbortController();
    this.inFlight = { jobs: group, controller };
    const ids = group.map((j) => j.sub.requestId).join(",");
    const requestId = `${ids.length > 200 ? ids.slice(0, 200) + "…" : ids}#${tick}`;
    const tPack = performance.now();
    let outputs: EngineOutputs;
    const e0 = performance.now();
    try {
      outputs = await this.runner.runTransformer(call, { requestId, signal: controller.signal });
    } catch (err) {
      const e1 = performance.now();
      this.inFlight = undefined;
      const e = toOrchestratorError(err);
      for (const j of group) {
        j.pending = undefined;
        this.finishWithError(j, j.cancelReason ?? e);
      }
      this.opts.onTick?.({
        batchSize: group.length,
        rows: call.rows,
        length: call.length,
        tokens: call.tokens,
        engineMs: e1 - e0,
        orchestratorMs: tPack - t0,
        stepMs: e1 - t0,
      });
      return;
    }
    const engineMs = performance.now() - e0;
    this.inFlight = undefined;

    let results: PackOutput[];
    try {
      results = unpackStep(call, outputs);
    } catch (err) {
      const e = new OrchestratorError(Code.Internal, toOrchestratorError(err).message);
      for (const j of group) this.finishWithError(j, e);
      return;
    }
    for (let i = 0; i < group.length; i++) {
      const job = group[i];
      job.pending = undefined;
      if (job.state !== "active") continue;
      if (job.cancelReason) {
        this.finishWithError(job, job.cancelReason);
        continue;
      }
      try {
        job.task!.advance(results[i]);
      } catch (err) {
        this.finishWithError(job, new OrchestratorError(Code.Internal, `step failed: ${toOrchestratorError(err).message}`));
        continue;
      }
      job.stepsDone++;
      job.lastTick = tick;
      const info: StepInfo = {
        step: job.stepsDone,
        totalSteps: job.task!.totalSteps,
        tokens: call.members[i].tokens,
        engineMs,
        batchSize: group.length,
      };
      try {
        job.sub.onStep?.(job.task!, info);
      } catch {
        // ignore listener errors
      }
      if (job.task!.isDone()) {
        this.release(job);
        try {
          job.sub.onDone(job.task!);
        } catch {
          // ignore listener errors
        }
      }
    }
    const t1 = performance.now();
    const stepMs = t1 - t0;
    this.stepEmaMs = this.stepEmaMs === 0 ? stepMs : 0.8 * this.stepEmaMs + 0.2 * stepMs;
    this.opts.onTick?.({
      batchSize: group.length,
      rows: call.rows,
      length: call.length,
      tokens: call.tokens,
      engineMs,
      orchestratorMs: stepMs - engineMs,
      stepMs,
    });
  }
}
