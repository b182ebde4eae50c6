// What an Idempotency-Key lookup turns into before any work: the stored response of a finished request
// (replayed from R2, marked `idempotent-replayed: true`), or the 409 / 422 for a key still in use or reused
// with another body. Used by the idempotency middleware and when a reservation loses a race for the key.
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { IdempotencyState } from "../durable/account";

export function idempotencyError(s: Exclude<IdempotencyState, { state: "new" | "completed" }>): ApiError {
  return s.state === "mismatch"
    ? new ApiError(422, "invalid_request_error", "This Idempotency-Key was already used with a different request body.", "idempotency_key_reused", "Idempotency-Key")
    : new ApiError(409, "invalid_request_error", "A request with this Idempotency-Key is still being processed; retry later.", "idempotency_key_in_use", "Idempotency-Key", { "retry-after": "1" });
}

/** Stored response for a replay (R2), with the replay marker. */
export async function replayResponse(c: Context<AppEnv>, ref: string | null, status: number | null): Promise<Response> {
  const obj = ref ? await c.env.RESULTS.get(ref) : null;
  if (!obj) throw new ApiError(409, "invalid_request_error", "The stored result of this Idempotency-Key is no longer available.", "idempotency_result_expired", "Idempotency-Key");
  const headers = new Headers({ "content-type": obj.httpMetadata?.contentType ?? "application/json", "idempotent-replayed": "true" });
  const job = obj.customMetadata?.job_id;
  if (job) headers.set("x-dimoo-job-id", job);
  return new Response(obj.body, { status: status ?? 200, headers });
}
