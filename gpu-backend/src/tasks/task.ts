// What the service needs from a task family, and what a family hands the step batcher. A family turns a
// request into a running task: validate (INVALID_ARGUMENT naming the field; decode inputs, tokenize, fill
// defaults), prepare (VQ-encode inputs, build the sampler), and for images preview and finish (VQ-decode,
// encode). The batcher drives the task's sampler in between. Every interface is generic over the family's
// own spec and task types, so the service hands each family back exactly what it produced, without casts.
import type { GenerateRequest, UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { StepTask } from "../batcher/step-batcher";
import type { VqRunner } from "../engine/runners";
import type { ImageWork } from "../image-work/image-work";
import type { Tokenizer } from "../model/tokenizer";
import type { Limits } from "./limits";

/** What the task families need from the host. */
export interface TaskDeps {
  tokenizer: Tokenizer;
  vq: VqRunner;
  limits: Limits;
  /** Where input decode, resampling and painting blends run; default inline (the orchestrator passes its pool). */
  images?: ImageWork;
  /** Whether the engine serves the stateful model now: requests that ask for the ML-Cache run cached. */
  mlCache?: () => boolean;
}

export interface CallContext {
  requestId: string;
  signal: AbortSignal;
}

/** A validated generation request: what the service reports about it, before the family's own fields. */
export interface GenerateSpec {
  requestId: string;
  task: string;
  width: number;
  height: number;
  steps: number;
  seed: bigint;
  mimeType: string;
}

/** A running image request. */
export interface ImageTask extends StepTask {
  /** Image tokens still masked. */
  readonly maskedRemaining: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** Steps so far that recomputed only part of the sequence (ML-Cache). */
  readonly cachedSteps: number;
}

export interface EncodedImage {
  bytes: Uint8Array;
  mimeType: string;
  width: number;
  height: number;
}

export interface GeneratePipeline<S extends GenerateSpec = GenerateSpec, T extends ImageTask = ImageTask> {
  validate(req: GenerateRequest): Promise<S>;
  prepare(spec: S, ctx: CallContext): Promise<T>;
  /** A low-resolution preview of the task's latest prediction; snapshots the task synchronously. */
  preview(spec: S, task: T, ctx: CallContext): Promise<EncodedImage>;
  finish(spec: S, task: T, ctx: CallContext): Promise<EncodedImage>;
}

/** A validated understanding request. */
export interface UnderstandSpec {
  requestId: string;
  seed: bigint;
  maxTokens: number;
}

/** A running understanding request. */
export interface TextTask extends StepTask {
  /** Text decoded from blocks finished since the last call ("" if none). */
  takeDelta(): string;
  /** Whole answer so far. */
  text(): string;
  finishReason(): "stop" | "length";
  readonly promptTokens: number;
  readonly outputTokens: number;
}

export interface UnderstandPipeline<S extends UnderstandSpec = UnderstandSpec, T extends TextTask = TextTask> {
  validate(req: UnderstandRequest): Promise<S>;
  prepare(spec: S, ctx: CallContext): Promise<T>;
}
