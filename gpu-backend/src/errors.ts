// Typed errors of the orchestrator core, mapped once to the wire (ConnectError with details) in service/.
import { Code } from "@connectrpc/connect";

export { Code };

export class OrchestratorError extends Error {
  override name = "OrchestratorError";
  constructor(
    readonly code: Code,
    message: string,
    /** For INVALID_ARGUMENT: the offending request field (proto name, e.g. "prompt", "images[0]"). */
    readonly field?: string,
    /** For RESOURCE_EXHAUSTED: when to try again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export const invalidArgument = (field: string, description: string) =>
  new OrchestratorError(Code.InvalidArgument, `${field}: ${description}`, field);

export const resourceExhausted = (message: string, retryAfterMs: number) =>
  new OrchestratorError(Code.ResourceExhausted, message, undefined, retryAfterMs);

export const deadlineExceeded = (message = "deadline exceeded") => new OrchestratorError(Code.DeadlineExceeded, message);

export const cancelled = (message = "request cancelled") => new OrchestratorError(Code.Canceled, message);

export const unavailable = (message: string) => new OrchestratorError(Code.Unavailable, message);

export const internal = (message: string) => new OrchestratorError(Code.Internal, message);

/** Best-effort gRPC code of any thrown value (typed engine/Triton errors carry a numeric `code`). */
export function codeOf(err: unknown): Code {
  if (err instanceof OrchestratorError) return err.code;
  const c = (err as { code?: unknown } | null)?.code;
  if (typeof c === "number" && c >= 1 && c <= 16) return c as Code;
  const name = (err as { name?: unknown } | null)?.name;
  if (name === "AbortError") return Code.Canceled;
  if (name === "TimeoutError") return Code.DeadlineExceeded;
  return Code.Internal;
}

/** Wraps anything thrown into an OrchestratorError, keeping its code. */
export function toOrchestratorError(err: unknown): OrchestratorError {
  if (err instanceof OrchestratorError) return err;
  // The model layer's InvalidArgument: { code: "INVALID_ARGUMENT", field }.
  const inv = err as { code?: unknown; field?: unknown; message?: unknown } | null;
  if (inv?.code === "INVALID_ARGUMENT" && typeof inv.field === "string") {
    return new OrchestratorError(Code.InvalidArgument, String(inv.message ?? inv.field), inv.field);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new OrchestratorError(codeOf(err), msg);
}
