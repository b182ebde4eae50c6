// What the service needs from the task-specific code: validate a request (INVALID_ARGUMENT naming the
// field), prepare its sampler (may call the engine: VQ encode), and turn a finished sampler into a result.
// The scheduler drives the sampler in between. service/dimoo-service.ts only sees these interfaces;
// scheduler/pipelines.ts implements them with the model/ and sampling/ modules and the VQ engines.
import type { GenerateRequest, UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { StepTask } from "../scheduler/scheduler";

export interface CallContext {
  requestId: string;
  signal: AbortSignal;
}

/** A validated generation request: everything the pipeline needs, with defaults filled in. */
export interface GenerateSpec {
  requestId: string;
  task: string;
  width: number;
  height: number;
  steps: number;
  seed: bigint;
  mimeType: string;
  /** Opaque to the service. */
  detail: unknown;
}

export interface ImageTask extends StepTask {
  /** Image tokens still masked. */
  readonly maskedRemaining: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
}

export interface EncodedImage {
  bytes: Uint8Array;
  mimeType: string;
  width: number;
  height: number;
}

export interface GeneratePipeline {
  validate(req: GenerateRequest): Promise<GenerateSpec>;
  prepare(spec: GenerateSpec, ctx: CallContext): Promise<ImageTask>;
  /** A low-resolution preview of the current state (predicted tokens where masked). */
  preview(spec: GenerateSpec, task: ImageTask, ctx: CallContext): Promise<EncodedImage>;
  finish(spec: GenerateSpec, task: ImageTask, ctx: CallContext): Promise<EncodedImage>;
}

export interface UnderstandSpec {
  requestId: string;
  seed: bigint;
  maxTokens: number;
  detail: unknown;
}

export interface TextTask extends StepTask {
  /** Text decoded from blocks finished since the last call ("" if none). */
  takeDelta(): string;
  /** Whole answer so far. */
  text(): string;
  finishReason(): "stop" | "length";
  readonly promptTokens: number;
  readonly outputTokens: number;
}

export interface UnderstandPipeline {
  validate(req: UnderstandRequest): Promise<UnderstandSpec>;
  prepare(spec: UnderstandSpec, ctx: CallContext): Promise<TextTask>;
}

export interface ModelStatus {
  name: string;
  ready: boolean;
}

export interface EngineHealth {
  /** Readiness of every model the orchestrator uses; throws or returns ready=false when unreachable. */
  models(signal?: AbortSignal): Promise<ModelStatus[]>;
}
