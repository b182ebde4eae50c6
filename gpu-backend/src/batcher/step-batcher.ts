// The step batcher: step-level continuous batching of every running request into shared transformer calls.
//
// Requests are admitted into a bounded queue, prepared concurrently (image decoding, VQ encoding: whatever
// `prepare` does), and join the running set at the next step boundary when a slot is free. The loop runs
// ONE transformer call at a time: it picks a group of running requests that share a sequence-length bucket,
// packs their next step into one contract call, runs it, and hands each request its outputs. Requests leave
// at step boundaries (done, cancelled, past their deadline), which frees their slot for the next one.
//
// Fairness: a request that has not yet run a step leads the next call, so a new request's first step starts
// within about one step time of its arrival (plus its own preparation) even while others are mid-generation;
// otherwise the least recently stepped request leads. The leader's bucket peers fill the call up to the row
// and token limits.
//
// Drain (a host being stopped): nothing new is admitted, what is admitted runs to its end within a grace
// period, the rest is failed with UNAVAILABLE, and the engine's open sequences are ended before it resolves.
import { engineCallLimits, type CallLimits } from "../engine/call-limits";
import { endingCall, packCachedStep, unpackCachedStep, type CachedCall } from "../engine/cached-call";
import { longestRow, packStep, unpackStep } from "../engine/packer";
import { TRANSFORMER_CACHED_LIMITS } from "../engine/profiles";
import type { TransformerRunner } from "../engine/runners";
import type { StepOutputs } from "../engine/step";
import {
  cancelled,
  Code,
  codeOf,
  deadlineExceeded,
  OrchestratorError,
  resourceExhausted,
  toOrchestratorError,
  unavailable,
} from "../errors";
import { bucketFor, DEFAULT_BUCKETS } from "./buckets";
import { FairShare } from "./fair-share";
import { Job, type NextStep, type Running, type StepInfo, type StepTask } from "./job";

export type { StepInfo, StepTask };

/** One request as the caller submits it; T is the caller's own task type, handed back to its callbacks. */
export interface Submission<T extends StepTask> {
  requestId: string;
  /** Who pays for the request; unset = the shared default tenant. */
  tenant?: string;
  /** The tenant's share relative to others (default 1). */
  weight?: number;
  /** Absolute deadline (Date.now() based); Infinity = none. */
  deadlineAt: number;
  /** Aborted when the caller goes away. */
  signal?: AbortSignal;
  /** Builds the task (may call the engine, e.g. VQ encode); runs right away, while the request waits. */
  prepare(signal: AbortSignal): Promise<T> | T;
  /** Synchronously at submission; 0 = it can run now. */
  onAccepted?(queuePosition: number): void;
  /** After each step (the task has already advanced). */
  onStep?(task: NoInfer<T>, info: StepInfo): void;
  /** Stepping finished; the slot is already free. */
  onDone(task: NoInfer<T>): void;
  /** The request failed, was cancelled or ran past its deadline; its slot is already free. */
  onError(err: OrchestratorError): void;
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

export interface StepBatcherOptions {
  runner: TransformerRunner;
  /** Requests stepping at once (slots). */
  maxActive?: number;
  /** Requests waiting for a slot (including those still preparing); beyond it: RESOURCE_EXHAUSTED. */
  maxQueue?: number;
  /** Slots one tenant may hold at once (default: half the slots, at least 1). */
  maxActivePerTenant?: number;
  /** Requests one tenant may have waiting for a slot (default: half the queue, at least 1). */
  maxQueuePerTenant?: number;
  /** Cached requests running at once: the sequences the stateful model holds (default: its profile's). */
  maxCachedActive?: number;
  /** Rows (branches) in one transformer call. */
  maxBatchRows?: number;
  /** Padded tokens (R*L) in one transformer call. */
  maxBatchTokens?: number;
  buckets?: readonly number[];
  /**
   * What one call of row length L may hold (the engine's optimization profiles); default: the TensorRT
   * profiles (engine/call-limits.ts). maxBatchRows/maxBatchTokens cap it further.
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

/** The UNAVAILABLE message of a request refused by a draining host: nothing ran, another host may take it. */
export const DRAINING_MESSAGE = "this host is draining and admits no new requests; send the request to another host";
/** The UNAVAILABLE message of a request still unfinished when a drain's grace period ended. */
export const DRAIN_CANCEL_MESSAGE = "this host shut down before the request finished (drain grace period over); retry";

/** What a drain did with the requests the batcher held when it began. */
export interface DrainReport {
  /** Requests queued or running when the drain began. */
  held: number;
  /** Those still unfinished at the end of the grace period, failed with UNAVAILABLE. */
  cancelled: number;
  /** How long the drain took. */
  ms: number;
}

/** A running request with its next step planned. */
interface Planned {
  member: Running;
  next: NextStep;
}

/** One engine call and who is in it: a packed call of stateless steps, or one request's cached step. */
interface Batch {
  members: Running[];
  tick: number;
  rows: number;
  length: number;
  /** Tokens the transformer processes in this call, and per member. */
  tokens: number;
  memberTokens: number[];
  /** Runs the call and splits its outputs per member (in member order). */
  run(opts: { requestId: string; signal: AbortSignal }): Promise<StepOutputs[]>;
  /** For a cached step: the call, kept while the member's engine sequence stays open. */
  cached?: CachedCall;
}

/** Calls a listener; a listener's error must never break the loop. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // ignored on purpose
  }
}

export class StepBatcher {
  readonly maxActive: number;
  readonly maxQueue: number;
  readonly maxActivePerTenant: number;
  readonly maxQueuePerTenant: number;
  readonly maxCachedActive: number;
  readonly maxBatchRows: number;
  readonly maxBatchTokens: number;
  private readonly buckets: readonly number[];
  private readonly callLimits: (length: number) => CallLimits;
  private readonly runner: TransformerRunner;
  private readonly opts: StepBatcherOptions;
  private readonly now: () => number;

  /** Admitted, not yet holding a slot: preparing or ready. */
  private waiting: Job[] = [];
  /** Holding a slot. */
  private running: Running[] = [];
  private seq = 0;
  private tick = 0;
  private readonly fairShare = new FairShare();
  private looping = false;
  private stopped = false;
  /** Set by drain(): nothing new is admitted, what is here runs to its end. */
  private draining = false;
  /** Resolved each time the batcher holds no request (drain waits on it). */
  private idleWaiters: (() => void)[] = [];
  /** Sequence ends sent to the engine and not yet answered (drain waits for them). */
  private endingSequences = new Set<Promise<unknown>>();
  private wakeLoop?: () => void;
  private inFlight?: { members: Running[]; controller: AbortController };
  /** Exponential moving average of one call's wall time, for retry hints. */
  private stepEmaMs = 0;

  constructor(opts: StepBatcherOptions) {
    this.opts = opts;
    this.runner = opts.runner;
    this.maxActive = opts.maxActive ?? 8;
    this.maxQueue = opts.maxQueue ?? 32;
    this.maxActivePerTenant = opts.maxActivePerTenant ?? Math.max(1, Math.ceil(this.maxActive / 2));
    this.maxQueuePerTenant = opts.maxQueuePerTenant ?? Math.max(1, Math.ceil(this.maxQueue / 2));
    this.maxCachedActive = opts.maxCachedActive ?? TRANSFORMER_CACHED_LIMITS.maxSequences;
    this.maxBatchRows = opts.maxBatchRows ?? 32;
    this.maxBatchTokens = opts.maxBatchTokens ?? 1 << 18;
    this.buckets = opts.buckets ?? DEFAULT_BUCKETS;
    this.callLimits = opts.callLimits ?? engineCallLimits;
    this.now = opts.now ?? Date.now;
  }

  private get freeSlots(): number {
    return Math.max(0, this.maxActive - this.running.length);
  }

  /** Requests waiting for a slot: those admitted (preparing or ready) beyond the free slots. */
  get queueDepth(): number {
    return Math.max(0, this.waiting.length - this.freeSlots);
  }

  /** Requests holding a slot. */
  get activeCount(): number {
    return this.running.length;
  }

  /** Whether drain() was called: the host refuses new requests and reports itself not ready. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Average wall time of one step call so far (ms), 0 before the first. */
  get stepTimeMs(): number {
    return this.stepEmaMs;
  }

  /**
   * Admits a request or throws RESOURCE_EXHAUSTED (with a retry hint) when the queue is full. Callbacks
   * run later; onAccepted runs before submit returns.
   */
  submit<T extends StepTask>(sub: Submission<T>): void {
    if (this.stopped) throw unavailable("orchestrator is shutting down");
    if (this.draining) throw unavailable(DRAINING_MESSAGE);
    const position = this.queueDepth + (this.waiting.length < this.freeSlots ? 0 : 1);
    if (position > 0 && this.queueDepth >= this.maxQueue) {
      throw resourceExhausted(`queue full (${this.waiting.length} waiting, ${this.running.length} running)`, this.retryHintMs());
    }
    const tenant = sub.tenant ?? "";
    if (tenant !== "") {
      // A named tenant's requests beyond the slots it may hold wait; past its share of the queue, it alone is refused.
      const held = this.waiting.filter((j) => j.tenant === tenant).length + this.running.filter((r) => r.job.tenant === tenant).length;
      if (held - this.maxActivePerTenant >= this.maxQueuePerTenant) {
        throw resourceExhausted(`queue full for this tenant (${held} requests admitted)`, this.retryHintMs());
      }
    }
    if (sub.signal?.aborted) throw cancelled();
    if (sub.deadlineAt <= this.now()) throw deadlineExceeded("deadline exceeded before admission");

    const weight = sub.weight !== undefined && sub.weight > 0 ? sub.weight : 1;
    const job = new Job(this.seq++, sub.requestId, tenant, weight, sub.deadlineAt, (err) => this.reportError(job, err, sub));
    this.waiting.push(job);
    sub.onAccepted?.(position);

    if (sub.signal) {
      const signal = sub.signal;
      // The caller's own timeout aborts the signal too (reason: DEADLINE_EXCEEDED); anything else is a cancel.
      const onAbort = () =>
        this.cancel(job, codeOf(signal.reason) === Code.DeadlineExceeded ? deadlineExceeded("caller's deadline exceeded") : cancelled("caller went away"));
      signal.addEventListener("abort", onAbort, { once: true });
      job.onRelease(() => signal.removeEventListener("abort", onAbort));
    }
    if (Number.isFinite(sub.deadlineAt)) {
      const timer = setTimeout(() => this.cancel(job, deadlineExceeded()), Math.max(0, sub.deadlineAt - this.now()));
      timer.unref?.();
      job.onRelease(() => clearTimeout(timer));
    }

    void Promise.resolve()
      .then(() => sub.prepare(job.controller.signal))
      .then(
        (task) => {
          if (job.phase.state !== "preparing") return; // cancelled meanwhile
          // The listener closes over the caller's own task type, so nothing downstream casts it back.
          job.phase = { state: "ready", task, listener: { step: (info) => sub.onStep?.(task, info), done: () => sub.onDone(task) } };
          this.kick();
        },
        (err) => {
          if (job.phase.state === "preparing") this.finishWithError(job, toOrchestratorError(err));
        },
      );
  }

  /**
   * Graceful drain: admits nothing new from now on, lets every admitted request (queued or running) finish
   * within `graceMs`, then fails what is left with UNAVAILABLE, and waits until the engine has answered
   * the sequence ends of cached requests (so Triton frees their state now, not at its idle timeout).
   * Resolves with what happened to the requests held when it was called; idempotent in effect.
   */
  async drain(graceMs: number): Promise<DrainReport> {
    this.draining = true;
    const held = this.waiting.length + this.running.length;
    const t0 = this.now();
    let cancelled = 0;
    const idle = this.whenIdle();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace">((resolve) => (timer = setTimeout(() => resolve("grace"), Math.max(0, graceMs))));
    const first = await Promise.race([idle.then(() => "idle" as const), graceOver]);
    clearTimeout(timer);
    if (first === "grace") {
      const left = [...this.waiting, ...this.running.map((r) => r.job)];
      cancelled = left.length;
      for (const j of left) this.cancel(j, unavailable(DRAIN_CANCEL_MESSAGE));
      await idle;
    }
    await Promise.allSettled([...this.endingSequences]);
    return { held, cancelled, ms: this.now() - t0 };
  }

  /** Resolves once no request is queued or running. */
  private whenIdle(): Promise<void> {
    if (this.waiting.length === 0 && this.running.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops accepting, fails everything still queued or running with UNAVAILABLE. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const j of [...this.waiting, ...this.running.map((r) => r.job)]) this.cancel(j, unavailable("orchestrator is shutting down"));
    this.inFlight?.controller.abort();
    this.kick();
  }

  /** Estimated wait until a slot frees: the soonest-finishing running request's remaining steps. */
  retryHintMs(): number {
    const floor = this.opts.minRetryAfterMs ?? 500;
    if (this.running.length === 0 || this.stepEmaMs === 0) return floor;
    let minRemaining = Infinity;
    for (const r of this.running) minRemaining = Math.min(minRemaining, Math.max(1, r.task.totalSteps - r.stepsDone));
    // Every running bucket group takes turns, so one step of a request costs about one call per group.
    const groups = new Set(this.running.map((r) => r.next?.bucket ?? 0)).size || 1;
    const est = minRemaining * this.stepEmaMs * groups * (1 + this.waiting.length / Math.max(1, this.maxActive));
    return Math.min(120_000, Math.max(floor, Math.round(est)));
  }

  private cancel(job: Job, reason: OrchestratorError): void {
    const phase = job.phase;
    if (phase.state === "finished") return;
    if (phase.state === "running") {
      // The caller hears at once; the slot frees at the next step boundary (an in-flight call made only
      // of cancelled requests is aborted).
      phase.cancelReason ??= reason;
      job.notifyError(phase.cancelReason);
      const f = this.inFlight;
      if (f && f.members.includes(phase) && f.members.every((r) => r.cancelReason)) f.controller.abort();
      this.kick();
      return;
    }
    // Waiting (preparing or ready): leave right away.
    job.controller.abort();
    this.finishWithError(job, reason);
  }

  private reportError<T extends StepTask>(job: Job, err: OrchestratorError, sub: Submission<T>): void {
    this.opts.onJobError?.(job.requestId, err);
    quietly(() => sub.onError(err));
  }

  /** Takes the job out of every list and frees what it held (an open engine sequence is ended). */
  private release(job: Job): void {
    const phase = job.phase;
    if (phase.state === "running" && phase.sequence) this.endSequence(job, phase.sequence);
    job.finish();
    this.waiting = this.waiting.filter((j) => j !== job);
    this.running = this.running.filter((r) => r.job !== job);
    if (this.waiting.length === 0 && this.running.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.kick();
  }

  /**
   * Ends a request's engine sequence that will get no more steps, so the engine frees its state now rather
   * than at its idle timeout. Best effort: a failure leaves the idle timeout to reclaim it.
   */
  private endSequence(job: Job, last: CachedCall): void {
    const cached = this.runner.cached;
    if (!cached) return;
    const ending = cached.runCachedStep(endingCall(last), { requestId: `${job.requestId}#end`, signal: AbortSignal.timeout(10_000) }).catch(() => {});
    this.endingSequences.add(ending);
    void ending.finally(() => this.endingSequences.delete(ending));
  }

  private finishWithError(job: Job, err: OrchestratorError): void {
    if (job.phase.state === "finished") return;
    this.release(job);
    job.notifyError(err);
  }

  private kick(): void {
    const w = this.wakeLoop;
    this.wakeLoop = undefined;
    w?.();
    if (!this.looping && !this.stopped) {
      this.looping = true;
      void this.loop();
    }
  }

  /**
   * Moves ready requests (in arrival order) into free slots. A cached request also needs one of the
   * engine's sequence slots; while they are all taken it waits and uncached requests behind it go first.
   */
  private admit(): void {
    while (this.running.length < this.maxActive) {
      const job = this.fairShare.pick(this.admissible());
      if (!job || job.phase.state !== "ready") return;
      const { task, listener } = job.phase;
      this.fairShare.admitted(job);
      this.waiting = this.waiting.filter((j) => j !== job);
      const running: Running = { state: "running", job, task, listener, stepsDone: 0, lastTick: -1 };
      job.phase = running;
      this.running.push(running);
    }
  }

  /**
   * Each tenant's oldest ready request that may take a slot now: its tenant is below its cap (named tenants)
   * and, when cached, a sequence slot is free.
   */
  private admissible(): Job[] {
    const cachedFull = this.running.filter((r) => r.task.cached).length >= this.maxCachedActive;
    const held = new Map<string, number>();
    for (const r of this.running) held.set(r.job.tenant, (held.get(r.job.tenant) ?? 0) + 1);
    const seen = new Set<string>();
    const out: Job[] = [];
    for (const job of this.waiting) {
      const phase = job.phase;
      if (phase.state !== "ready" || seen.has(job.tenant) || (phase.task.cached && cachedFull)) continue;
      if (job.tenant !== "" && (held.get(job.tenant) ?? 0) >= this.maxActivePerTenant) continue;
      seen.add(job.tenant);
      out.push(job);
    }
    return out;
  }

  /** Drops running requests that were cancelled or ran past their deadline. */
  private sweep(): void {
    const now = this.now();
    for (const r of [...this.running]) {
      if (!r.cancelReason && r.job.deadlineAt <= now) r.cancelReason = deadlineExceeded();
      if (r.cancelReason) this.finishWithError(r.job, r.cancelReason);
    }
  }

  /** Asks every running task for its next step's inputs once; a task that cannot produce them fails alone. */
  private planNextSteps(): void {
    for (const r of [...this.running]) {
      if (r.next) continue;
      try {
        const inputs = r.task.engineInputs();
        r.next = { inputs, bucket: bucketFor(longestRow(inputs), this.buckets) };
      } catch (err) {
        this.finishWithError(r.job, new OrchestratorError(Code.Internal, `step inputs failed: ${toOrchestratorError(err).message}`));
      }
    }
  }

  /** Picks the next call's requests: a leader (new first, else least recently stepped) plus bucket peers. */
  private pickGroup(): Planned[] {
    this.planNextSteps();
    const order = this.running
      .flatMap((member) => (member.next ? [{ member, next: member.next }] : []))
      .sort(({ member: a }, { member: b }) => {
        const an = a.stepsDone === 0 ? 0 : 1;
        const bn = b.stepsDone === 0 ? 0 : 1;
        if (an !== bn) return an - bn;
        if (a.lastTick !== b.lastTick) return a.lastTick - b.lastTick;
        return a.job.seq - b.job.seq;
      });
    if (order.length === 0) return [];
    if (order[0].next.inputs.cache) return [order[0]];
    const L = order[0].next.bucket;
    const lim = this.callLimits(L);
    const maxRows = Math.min(lim.maxRows, this.maxBatchRows);
    const group: Planned[] = [];
    let rows = 0, images = 0, texts = 0;
    for (const p of order) {
      const { inputs, bucket } = p.next;
      if (bucket !== L || p.next.inputs.cache) continue;
      const k = inputs.branches.length;
      const isImage = inputs.mode === "image";
      if (group.length > 0) {
        if (rows + k > maxRows || (rows + k) * L > this.maxBatchTokens) continue;
        if (isImage ? images + 1 > lim.maxImageRequests : texts + 1 > lim.maxTextRequests) continue;
      }
      group.push(p);
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
        if (this.running.length === 0) {
          if (this.waiting.length === 0) return; // idle: the next submit restarts the loop
          await new Promise<void>((resolve) => (this.wakeLoop = resolve));
          continue;
        }
        await this.step();
        // Let I/O (new arrivals, cancellations, stream writes) run between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      // Never leave requests hanging on a batcher bug: fail everything that is running.
      const e = new OrchestratorError(Code.Internal, `step batcher failed: ${toOrchestratorError(err).message}`);
      for (const r of [...this.running]) this.finishWithError(r.job, e);
    } finally {
      // Synchronously with the loop's end, so a kick() right after starts a new loop.
      this.looping = false;
      if (!this.stopped && (this.running.length > 0 || this.waiting.some((j) => j.phase.state === "ready"))) this.kick();
    }
  }

  /** One step of one group: pack -> run -> distribute. */
  private async step(): Promise<void> {
    const t0 = performance.now();
    const batch = this.pack(this.pickGroup());
    if (!batch) return;
    const tPacked = performance.now();
    const outputs = await this.run(batch);
    const engineMs = performance.now() - tPacked;
    if (outputs) this.distribute(batch, outputs, engineMs);
    const stepMs = performance.now() - t0;
    if (outputs) this.stepEmaMs = this.stepEmaMs === 0 ? stepMs : 0.8 * this.stepEmaMs + 0.2 * stepMs;
    this.opts.onTick?.({
      batchSize: batch.members.length,
      rows: batch.rows,
      length: batch.length,
      tokens: batch.tokens,
      engineMs,
      orchestratorMs: outputs ? stepMs - engineMs : tPacked - t0,
      stepMs,
    });
  }

  /** Packs the group's next steps into one engine call; a group that cannot be packed fails. */
  private pack(group: Planned[]): Batch | undefined {
    if (group.length === 0) return undefined;
    const members = group.map(({ member }) => member);
    try {
      const cache = group[0].next.inputs.cache;
      if (cache) {
        // A cached request runs alone, as its own engine sequence, at its exact length (the state's size).
        const cached = this.runner.cached;
        if (!cached) throw new OrchestratorError(Code.FailedPrecondition, "the engine does not serve the cached model");
        const { inputs } = group[0].next;
        const call = packCachedStep(inputs, cache, longestRow(inputs));
        const run = async (opts: { requestId: string; signal: AbortSignal }) => [unpackCachedStep(call, await cached.runCachedStep(call, opts))];
        return { members, tick: this.tick++, rows: call.branches, length: call.length, tokens: call.tokens, memberTokens: [call.tokens], run, cached: call };
      }
      const length = Math.max(...group.map(({ next }) => next.bucket));
      const call = packStep(group.map(({ next }) => next.inputs), length);
      const run = async (opts: { requestId: string; signal: AbortSignal }) => unpackStep(call, await this.runner.runTransformer(call, opts));
      return { members, tick: this.tick++, rows: call.rows, length: call.length, tokens: call.tokens, memberTokens: call.members.map((m) => m.tokens), run };
    } catch (err) {
      if (err instanceof OrchestratorError) {
        for (const { member } of group) this.finishWithError(member.job, err);
        return undefined;
      }
      const e = new OrchestratorError(Code.Internal, `bad step inputs: ${toOrchestratorError(err).message}`);
      for (const { member } of group) this.finishWithError(member.job, e);
      return undefined;
    }
  }

  /** Runs the call; on failure every member leaves with the engine's error (or its own cancel reason). */
  private async run(batch: Batch): Promise<StepOutputs[] | undefined> {
    const controller = new AbortController();
    this.inFlight = { members: batch.members, controller };
    const ids = batch.members.map((r) => r.job.requestId).join(",");
    const requestId = `${ids.length > 200 ? ids.slice(0, 200) + "…" : ids}#${batch.tick}`;
    try {
      return await batch.run({ requestId, signal: controller.signal });
    } catch (err) {
      const e = toOrchestratorError(err);
      for (const r of batch.members) {
        r.next = undefined;
        this.finishWithError(r.job, r.cancelReason ?? e);
      }
      return undefined;
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Hands each member its outputs: advance, report the step, release the finished. */
  private distribute(batch: Batch, results: StepOutputs[], engineMs: number): void {
    batch.members.forEach((r, i) => {
      r.next = undefined;
      // The engine holds the sequence's state from its first call on, whatever happens to the request now.
      if (batch.cached) r.sequence = batch.cached.end ? undefined : batch.cached;
      if (r.job.phase !== r) {
        // Left while the call ran: its release could not end a sequence this call may have started.
        if (r.sequence) this.endSequence(r.job, r.sequence);
        return;
      }
      if (r.cancelReason) {
        this.finishWithError(r.job, r.cancelReason);
        return;
      }
      try {
        r.task.advance(results[i]);
      } catch (err) {
        this.finishWithError(r.job, new OrchestratorError(Code.Internal, `step failed: ${toOrchestratorError(err).message}`));
        return;
      }
      r.stepsDone++;
      r.lastTick = batch.tick;
      const info: StepInfo = {
        step: r.stepsDone,
        totalSteps: r.task.totalSteps,
        tokens: batch.memberTokens[i],
        engineMs,
        batchSize: batch.members.length,
      };
      quietly(() => r.listener.step(info));
      if (r.task.isDone()) {
        this.release(r.job);
        quietly(() => r.listener.done());
      }
    });
  }
}
