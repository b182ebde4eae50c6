// Errors in OpenAI's shape {"error":{"message","type","param","code"}}: the ApiError class thrown anywhere
// in the edge (request handlers and Durable Objects alike) and the constructors for common cases. Turning
// them into responses is error-handler.ts's job, so this module stays free of request typing.
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "server_error"
  | "service_unavailable";

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ErrorType,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalid = (message: string, param: string | null = null, code: string | null = "invalid_value") =>
  new ApiError(400, "invalid_request_error", message, code, param);

export const notFound = (message = "Not found", code = "not_found") => new ApiError(404, "not_found_error", message, code);

export const unavailable = (message: string, retryAfterS: number) =>
  new ApiError(503, "service_unavailable", message, "backend_unavailable", null, { "retry-after": String(retryAfterS) });

/** Thrown when a concurrent duplicate turns out to be complete: the stored response is the answer. */
export class ReplayResponse extends Error {
  constructor(readonly response: Response) {
    super("idempotent replay");
  }
}
