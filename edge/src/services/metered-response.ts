// Answers a metered request. It opens the caller's reservation (429s and idempotent replays happen here),
// runs the work and answers JSON or Server-Sent Events, settling the reservation exactly once: committed with
// the units actually used, the answer stored first when the request is idempotent, or released on failure,
// cancellation or client disconnect. A client that leaves cancels the orchestrator call and pays under the
// partial-work rule of docs/edge.md: the steps that ran once some output (a preview, answer text) reached
// it, else nothing. Both answers outlive a client that leaves (lib/outlive.ts, lib/held-json.ts) so that
// the settlement still reaches the Account object. Async job creation answers 202 and leaves its
// reservation to the Job object. Used by the images, chat and jobs routes.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "../env";
import { ApiError, ReplayResponse } from "../errors";
import { newId } from "../lib/ids";
import { outliveClient } from "../lib/outlive";
import { milliToUnits, type UsageTask } from "../metering";
import { toApiError } from "../backend/errors";
import { heldJson } from "../lib/held-json";
import { TTL } from "../config";
import { idempotencyError, replayResponse } from "./idempotent-replay";
import { Reservation, type Refusal, type Usage } from "./reservation";

/** One Server-Sent Event as written and as stored for replays. */
export interface StreamEvent {
  event?: string;
  data: string;
  /** carries model output (a preview image, answer text): once sent, a cancelled stream pays for what ran */
  delivers?: boolean;
}

/** Relays a live event to a streaming client (undefined when the answer is JSON). */
export type Emit = (e: StreamEvent) => Promise<void>;

/** A metered piece of work, built once its job id is known. */
export interface MeteredWork<R, B> {
  run(signal: AbortSignal, emit?: Emit): Promise<R>;
  usage(result: R): Usage;
  /** the work run so far: what a stream cancelled after it delivered output is charged */
  ranSoFar(): Usage;
  /** the JSON answer */
  body(result: R): Promise<B> | B;
  /** the SSE answer: events after the commit, and the event that reports a failure */
  stream: {
    final(result: R): Promise<StreamEvent[]> | StreamEvent[];
    failure(error: ApiError): StreamEvent;
    /** whether live events belong in the stored replay (chat deltas are the answer; image progress is not) */
    replaysLive: boolean;
  };
}

export interface MeteredRequest {
  task: UsageTask;
  estimateMilli: number;
  /** concurrency slots the work takes: its n output images (each its own orchestrator call), 1 for a chat */
  slots: number;
}

/** The lease a reservation holds between renewals: RESERVATION_LEASE_SECONDS, else TTL.reservationLeaseMs. */
function leaseMs(env: AppEnv["Bindings"]): number {
  const s = Number(env.RESERVATION_LEASE_SECONDS);
  return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : TTL.reservationLeaseMs;
}

/** A refusal as the client sees it: 429 for concurrency or quota, 409/422 for a key taken meanwhile. */
function refusalError(c: Context<AppEnv>, r: Refusal): ApiError {
  if (r.reason === "concurrency") {
    c.header("ratelimit-policy", `"concurrency";q=${r.limit};qu="concurrent-requests"`, { append: true });
    c.header("ratelimit", `"concurrency";r=0`, { append: true });
    const asked = r.requested > 1 ? `; this request needs ${r.requested} (one per image) and ${Math.max(0, r.limit - r.active)} are free` : "";
    return new ApiError(429, "rate_limit_error", `Too many generations in flight (limit ${r.limit} images at a time${asked}). Retry when one finishes.`, "concurrency_limit_exceeded", null, {
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
  // another request with this key got there between the middleware's lookup and this reservation (a
  // completed one is replayed before we get here)
  return r.state === "completed" ? idempotencyError({ state: "in_progress" }) : idempotencyError(r);
}

/** Reserves for the caller; throws the right ApiError, or the replay when a duplicate finished meanwhile. */
async function openReservation(c: Context<AppEnv>, { task, estimateMilli, slots }: MeteredRequest): Promise<Reservation> {
  const p = c.get("principal");
  const idem = c.get("idempotency");
  const r = await Reservation.open(c.env, p.accountId, {
    jobId: idem?.jobId ?? newId("job"),
    keyId: p.keyId,
    task,
    milli: estimateMilli,
    requestHash: idem?.requestHash,
    concurrency: p.plan.concurrency,
    slots,
    leaseMs: leaseMs(c.env),
    monthlyUnits: p.plan.monthly_units,
    requestId: c.get("requestId"),
  });
  if (!(r instanceof Reservation)) {
    if (r.reason === "idempotency" && r.state === "completed") throw new ReplayResponse(await replayResponse(c, r.responseRef, r.responseStatus));
    throw refusalError(c, r);
  }
  c.header("x-dimoo-job-id", r.jobId);
  return r;
}

const sseText = (events: StreamEvent[]) => events.map((e) => `${e.event ? `event: ${e.event}\n` : ""}data: ${e.data}\n\n`).join("");

/** A sync metered request: JSON, or SSE when `stream` is set. */
export async function meteredResponse<R, B>(c: Context<AppEnv>, request: MeteredRequest & { stream: boolean }, build: (jobId: string) => MeteredWork<R, B>) {
  const reservation = await openReservation(c, request);
  const work = build(reservation.jobId);

  if (!request.stream) {
    // Nothing reaches a JSON client before the answer, so one that leaves is charged nothing.
    return heldJson(
      c,
      async (signal) => {
        try {
          return await reservation.settle(async () => {
            const result = await work.run(signal);
            const value = await work.body(result);
            return { value, usage: work.usage(result), response: { status: 200, contentType: "application/json", body: () => JSON.stringify(value) } };
          }, signal);
        } catch (e) {
          throw toApiError(e);
        }
      },
      TTL.answerHoldMs,
    );
  }

  return streamSSE(
    c,
    outliveClient(c, async (sse) => {
      const client = new AbortController();
      sse.onAbort(() => client.abort(new Error("client disconnected")));
      const signal = AbortSignal.any([c.req.raw.signal, client.signal]);
      let delivered = false;
      const write = async (e: StreamEvent) => {
        if (sse.aborted || client.signal.aborted) return;
        // handed to the response stream while the client is still there: counted as sent
        const before = delivered;
        if (e.delivers) delivered = true;
        // A client that went away without its body being cancelled (seen behind wrangler dev's proxy) leaves
        // a write pending for ever: the request would never settle and its slot would stay taken. A client
        // that takes no event for this long is treated as gone, and the stuck event as not delivered.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stuck = new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), TTL.streamWriteTimeoutMs)));
        const timedOut = await Promise.race([sse.writeSSE(e).then(() => false), stuck]).finally(() => clearTimeout(timer));
        if (timedOut) {
          delivered = before;
          client.abort(new Error("client stopped reading"));
        }
      };
      const live: StreamEvent[] = [];
      const emit: Emit = (e) => {
        if (work.stream.replaysLive) live.push(e);
        return write(e);
      };
      try {
        const final = await reservation.settle(async () => {
          const result = await work.run(signal, emit);
          const value = await work.stream.final(result);
          return { value, usage: work.usage(result), response: { status: 200, contentType: "text/event-stream", body: () => sseText([...live, ...value]) } };
        }, signal, () => (delivered ? work.ranSoFar() : undefined));
        for (const e of final) await write(e);
      } catch (e) {
        await write(work.stream.failure(toApiError(e)));
      }
    }),
  );
}

/**
 * Async job creation: reserves, lets `create` store the inputs and start the Job object, keeps the 202 for
 * replays and leaves the reservation open for the Job object to settle; released if creation fails.
 */
export async function acceptedJob(
  c: Context<AppEnv>,
  request: MeteredRequest,
  create: (jobId: string) => Promise<{ job: unknown; location: string }>,
): Promise<Response> {
  const reservation = await openReservation(c, request);
  try {
    const { job, location } = await create(reservation.jobId);
    const body = JSON.stringify(job);
    await reservation.keepResponse({ status: 202, contentType: "application/json", body: () => body });
    return c.body(body, 202, { "content-type": "application/json", location });
  } catch (e) {
    await reservation.release("job creation failed");
    throw e;
  }
}
