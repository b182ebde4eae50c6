// One admitted request inside the step batcher, typed by where it is: preparing (its task is being built),
// ready (built, waiting for a slot), running (holds a slot and steps), finished (left, for any reason). Each
// phase carries only what exists in it, so the loop never asserts that a field is there.
import type { CachedCall } from "../engine/cached-call";
import type { StepInputs, StepOutputs } from "../engine/step";
import type { OrchestratorError } from "../errors";

/** What the batcher drives: one request's sampler, one step at a time. */
export interface StepTask {
  /** Steps this request will run at most (for progress and retry hints). */
  readonly totalSteps: number;
  /** Engine inputs of the next step. Called once per step, right before the step's call. */
  engineInputs(): StepInputs;
  /** Feeds the step's outputs back; returns after the request's state moved one step. */
  advance(out: StepOutputs): void;
  isDone(): boolean;
  /** Runs as an engine sequence (ML-Cache): holds one of the engine's sequence slots while running. */
  readonly cached?: boolean;
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

/** The caller's step and done callbacks, bound to its own task when preparation finished. */
export interface TaskListener {
  step(info: StepInfo): void;
  done(): void;
}

/** A running request's next step, asked for once and kept until its call ran. */
export interface NextStep {
  inputs: StepInputs;
  bucket: number;
}

export interface Preparing {
  state: "preparing";
}

export interface Ready {
  state: "ready";
  task: StepTask;
  listener: TaskListener;
}

export interface Running {
  state: "running";
  job: Job;
  task: StepTask;
  listener: TaskListener;
  stepsDone: number;
  /** Tick of the call this request last stepped in (-1: none yet). */
  lastTick: number;
  next?: NextStep;
  /** Set when the caller left or the deadline passed; the request leaves at the next step boundary. */
  cancelReason?: OrchestratorError;
  /** A cached request's last call while its engine sequence is open (ended when the request leaves early). */
  sequence?: CachedCall;
}

export interface Finished {
  state: "finished";
}

export type Phase = Preparing | Ready | Running | Finished;

export class Job {
  phase: Phase = { state: "preparing" };
  /** Aborts the task's preparation when the request leaves before it is ready. */
  readonly controller = new AbortController();
  private notified = false;
  private releases: Array<() => void> = [];

  constructor(
    readonly seq: number,
    readonly requestId: string,
    /** Who the request is for ("" = the shared default) and its share (docs: fair-share.ts). */
    readonly tenant: string,
    readonly weight: number,
    /** Absolute deadline (Date.now() based); Infinity = none. */
    readonly deadlineAt: number,
    private readonly onError: (err: OrchestratorError) => void,
  ) {}

  /** Registers what to undo when the job finishes (timers, abort listeners). */
  onRelease(fn: () => void): void {
    this.releases.push(fn);
  }

  finish(): void {
    this.phase = { state: "finished" };
    for (const fn of this.releases.splice(0)) fn();
  }

  /** Tells the caller once, however many paths report the same failure. */
  notifyError(err: OrchestratorError): void {
    if (this.notified) return;
    this.notified = true;
    this.onError(err);
  }
}
