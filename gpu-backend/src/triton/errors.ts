// Typed errors for Triton calls: the gRPC status code (numeric, as grpc-js and the orchestrator's codeOf()
// expect) and Triton's message verbatim.

import { status as Status, type Metadata, type ServiceError } from "@grpc/grpc-js";

export { Status };

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Status)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v as number, k]),
);

export function statusName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

export interface TritonErrorContext {
  /** The RPC that failed, e.g. "ModelInfer". */
  rpc?: string;
  model?: string;
  requestId?: string;
  metadata?: Metadata;
  /**
   * True for a failure reported inside a ModelStreamInfer response (`error_message`): Triton sends no status
   * code there, so `code` is inferred from the message text (see codeForMessage).
   */
  inBand?: boolean;
}

export class TritonError extends Error {
  override name = "TritonError";
  /** gRPC status code (grpc.status): NOT_FOUND = 5, INVALID_ARGUMENT = 3, UNAVAILABLE = 14, ... */
  readonly code: number;
  /** Triton's (or grpc-js's) message, verbatim; also `message`. */
  readonly details: string;
  readonly rpc?: string;
  readonly model?: string;
  readonly requestId?: string;
  readonly metadata?: Metadata;
  readonly inBand: boolean;

  constructor(code: number, details: string, ctx: TritonErrorContext = {}) {
    super(details);
    this.code = code;
    this.details = details;
    this.rpc = ctx.rpc;
    this.model = ctx.model;
    this.requestId = ctx.requestId;
    this.metadata = ctx.metadata;
    this.inBand = ctx.inBand ?? false;
  }

  get codeName(): string {
    return statusName(this.code);
  }

  /** Triton reports an unknown model as NOT_FOUND (or INVALID_ARGUMENT with model namespacing). */
  get isModelNotFound(): boolean {
    return (this.code === Status.NOT_FOUND || this.code === Status.INVALID_ARGUMENT) && this.details.includes("Request for unknown model");
  }
}

export function isTritonError(e: unknown): e is TritonError {
  return e instanceof TritonError;
}

/** Wraps a grpc-js ServiceError (or anything thrown) into a TritonError. */
export function toTritonError(e: unknown, ctx: TritonErrorContext = {}): TritonError {
  if (e instanceof TritonError) return e;
  const se = e as Partial<ServiceError> | null;
  if (se && typeof se.code === "number") {
    return new TritonError(se.code, se.details ?? se.message ?? "", { ...ctx, metadata: se.metadata ?? ctx.metadata });
  }
  return new TritonError(Status.INTERNAL, e instanceof Error ? e.message : String(e), ctx);
}

/**
 * Best-effort gRPC code for an in-band ModelStreamInfer error message, from Triton's fixed message texts
 * (docs/triton.md, "Error codes"). Falls back to UNKNOWN.
 */
export function codeForMessage(msg: string): number {
  if (/Request for unknown model: .*(is not found|has no available versions)/.test(msg)) return Status.NOT_FOUND;
  if (/is not at ready state|Exceeds maximum queue size|Request timeout expired|timeout of the corresponding sequence|Server is stopping|shutting down/.test(msg)) {
    return Status.UNAVAILABLE;
  }
  if (/doesn't support models with decoupled/.test(msg)) return Status.UNIMPLEMENTED;
  if (/cancel/i.test(msg)) return Status.CANCELLED;
  if (
    /unexpected shape|data-type is|byte size mismatch|batch-size must be|unexpected inference (input|output)|expected \d+ inputs|expected number of inputs|unable to find data|invalid value|must specify|string elements|string length indicator|All input dimensions|batch size does not match|already exists in request|failed to get model version|invalid model version|parameter keys starting with|contents field must not/.test(
      msg,
    )
  ) {
    return Status.INVALID_ARGUMENT;
  }
  if (/onnx runtime error|internal/i.test(msg)) return Status.INTERNAL;
  return Status.UNKNOWN;
}
