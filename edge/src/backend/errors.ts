// Orchestrator errors -> public API errors. INVALID_ARGUMENT keeps the offending field (FieldViolation
// detail, renamed to the public parameter), RESOURCE_EXHAUSTED keeps its RetryInfo as Retry-After, and
// transport failures are the ones the pool may fail over on (nothing was started on that host).
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldViolationSchema, RetryInfoSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { ApiError, invalid, unavailable } from "../errors";
import { TTL } from "../config";

const PUBLIC_PARAM: Record<string, string> = {
  prompt: "prompt",
  question: "messages",
  images: "image",
  mask: "mask",
  width: "size",
  height: "size",
  steps: "steps",
  guidance_scale: "guidance_scale",
  image_guidance_scale: "image_guidance_scale",
  temperature: "temperature",
  seed: "seed",
  edit_type: "edit_type",
  output_format: "output_format",
  max_tokens: "max_tokens",
};

/** Errors that mean "this host did not take the call": try the next one. */
export function isFailoverable(err: ConnectError): boolean {
  return err.code === Code.Unavailable || err.code === Code.Unauthenticated || err.code === Code.ResourceExhausted || err.code === Code.Unknown || err.code === Code.Unimplemented;
}

export function retryAfterSeconds(err: ConnectError | undefined): number {
  const info = err?.findDetails(RetryInfoSchema)[0];
  return info && info.retryAfterMs > 0 ? Math.ceil(info.retryAfterMs / 1000) : TTL.noBackendRetryAfterS;
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.InvalidArgument: {
      const v = err.findDetails(FieldViolationSchema)[0];
      const param = v ? (PUBLIC_PARAM[v.field] ?? v.field) : null;
      return invalid(v?.description ? `${param}: ${v.description}` : err.rawMessage, param, "invalid_value");
    }
    case Code.ResourceExhausted:
      return unavailable("All model servers are busy; retry shortly.", retryAfterSeconds(err));
    case Code.Unavailable:
    case Code.Unauthenticated:
      return unavailable("No model server is reachable; retry shortly.", TTL.noBackendRetryAfterS);
    case Code.DeadlineExceeded:
      return new ApiError(504, "server_error", "The generation did not finish in time.", "timeout");
    case Code.Canceled:
      return new ApiError(499 as 400, "invalid_request_error", "The request was cancelled.", "cancelled");
    default:
      return new ApiError(502, "server_error", "The model server failed while processing your request.", "backend_error");
  }
}
