// Errors in OpenAI's shape {"error":{"message","type","param","code"}}: the ApiError class thrown anywhere
// in the edge, the constructors for common cases, and the app-wide onError / notFound handlers.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./env";

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

/** app.onError: ApiError as is, HTTPException (validators, body limit) mapped, anything else a 500. */
export function onError(err: Error, c: Context<AppEnv>): Response {
  const requestId = c.get("requestId");
  if (err instanceof ReplayResponse) return err.response;
  let api: ApiError;
  if (err instanceof ApiError) api = err;
  else if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    if (status === 413) api = new ApiError(413, "invalid_request_error", "Request body too large", "request_too_large");
    else if (status === 415) api = new ApiError(415, "invalid_request_error", "Unsupported Content-Type; send application/json", "unsupported_media_type");
    else if (status === 401) api = new ApiError(401, "authentication_error", err.message || "Unauthorized", "invalid_api_key");
    else api = new ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", err.message || "Bad request", status === 400 ? "invalid_request" : null);
  } else {
    // Never log request bodies, prompts, images or keys: the request id and the error are enough.
    console.error(JSON.stringify({ level: "error", requestId, error: String(err?.stack ?? err) }));
    api = new ApiError(500, "server_error", "The server had an error while processing your request.", "internal_error");
  }
  // c.json keeps the headers set earlier with c.header() (x-request-id, rate-limit fields) and adds ours.
  return c.json(api.body(), api.status, api.headers);
}

export function notFoundHandler(c: Context<AppEnv>): Response {
  return onError(notFound(`Unknown route ${c.req.method} ${new URL(c.req.url).pathname}`, "unknown_url"), c);
}
