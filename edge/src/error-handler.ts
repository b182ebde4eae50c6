// The app-wide onError and notFound handlers: every failure leaves as OpenAI's error body with its status
// and headers; validator and body-limit exceptions are mapped, anything unexpected is logged and a 500.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./env";
import { ApiError, notFound, ReplayResponse } from "./errors";

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
