// One metered unit of work (a job): reserve the estimate and a concurrency slot in the Account object, then
// either commit the actual units exactly once (storing the response first when the request is idempotent)
// or release on any failure or cancellation, so failures are never charged. Reservation refusals become
// 429s: concurrency (retry soon) or quota (do not retry: x-should-retry: false).
import type { Context } from "hono";
import type { AppEnv, Env } from "../env";
import { ApiError, ReplayResponse } from "../errors";
import { newId } from "../lib/ids";
import { accountStub } from "../durable/account";
import { idempotencyError, replayResponse } from "./idempotent-replay";
import { milliToUnits, type UsageTask } from "../metering";
import { toApiError } from "../backend/errors";
import type { ReserveResult } from "../durable/account";

export interface StoredResponse {
  status: number;
  contentType: string;
  body: string;
}

export const idempotencyObjectKey = (accountId: string, jobId: string) => `idempotency/${accountId}/${jobId}`;

export async function storeResponse(env: Env, accountId: string, jobId: string, r: StoredResponse): Promise<string> {
  const key = idempotencyObjectKey(accountId, jobId);
  await env.RESULTS.put(key, r.body, { httpMetadata: { contentType: r.contentType }, customMetadata: { job_id: jobId, status: String(r.status) } });
  return key;
}

export function reservationError(c: Context<AppEnv> | undefined, r: Exclude<ReserveResult, { ok: true }>): ApiError {
  if (r.reason === "concurrency") {
    c?.header("ratelimit-policy", `"concurrency";q=${r.limit};qu="concurrent-requests"`, { append: true });
    c?.header("ratelimit", `"concurrency";r=0`, { append: true });
    return new ApiError(429, "rate_limit_error", `Too many generations in flight (limit ${r.limit}). Retry when one finishes.`, "concurrency_limit_exceeded", null, {
      "retry-after": "1",
    });
  }
  if (r.reason === "quota") {
    return new ApiError(
      429,
      "insufficient_quota",
      `Monthly quota exceeded: ${milliToUnits(r.usedMilli)} of ${milliToUnits(r.limitMilli)} megapixel-steps used, this request needs ${milliToUnits(r.requestedMilli)}. The quota resets at ${r.resetsAt}.`,
      "insufficient_quota",
      null,
      { "x-should-retry": "false" },
    );
  }
  // idempotency race: another request with this key got there between lookup and reserve
  // (a completed one is replayed by the caller before we get here)
  return r.state === "completed" ? idempotencyError({ state: "in_progress" }) : idempotencyError(r);
}

/** Ledger note for a released job: client cancellation or the public error code. */
export const releaseReason = (e: unknown): string => {
  const api = toApiError(e);
  return api.code === "cancelled" ? "cancelled by client" : `failed: ${api.code ?? api.status}`;
};

export class MeterSession {
  private settled = false;

  private constructor(
    readonly env: Env,
    readonly accountId: string,
    readonly jobId: string,
    readonly idempotent: boolean,
  ) {}

  /** Reserves; throws the right ApiError (or a replay) when refused. */
  static async open(c: Context<AppEnv>, task: UsageTask, estimateMilli: number): Promise<MeterSession> {
    const p = c.get("principal");
    const idem = c.get("idempotency");
    const jobId = idem?.jobId ?? newId("job");
    const r = await accountStub(c.env, p.accountId).reserve(p.accountId, {
      jobId,
      keyId: p.keyId,
      task,
      milli: estimateMilli,
      requestHash: idem?.requestHash,
      concurrency: p.plan.concurrency,
      monthlyUnits: p.plan.monthly_units,
    });
    if (!r.ok) {
      if (r.reason === "idempotency" && r.state === "completed") throw new ReplayResponse(await replayResponse(c, r.responseRef, r.responseStatus));
      throw reservationError(c, r);
    }
    c.header("x-dimoo-job-id", jobId);
    return new MeterSession(c.env, p.accountId, jobId, idem !== undefined);
  }

  /** Charges `milli` once; stores the response first so a replay can find it. */
  async commit(milli: number, details: { images: number; steps: number; requestId?: string }, response?: StoredResponse): Promise<boolean> {
    if (this.settled) return false;
    this.settled = true;
    const ref = this.idempotent && response ? await storeResponse(this.env, this.accountId, this.jobId, response) : undefined;
    const r = await accountStub(this.env, this.accountId).commit({
      jobId: this.jobId,
      milli,
      images: details.images,
      steps: details.steps,
      requestId: details.requestId,
      responseRef: ref,
      responseStatus: response?.status,
    });
    return r.changed;
  }

  async release(reason: string): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await accountStub(this.env, this.accountId).release(this.jobId, reason);
  }
}
