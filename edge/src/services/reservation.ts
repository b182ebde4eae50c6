// A metering reservation: one job's row in its Account ledger, holding the estimated units and a concurrency
// slot until it is settled exactly once, either committed with the units actually used (the response stored
// first when the request is idempotent, so a replay finds it) or released on any failure, cancellation or
// disconnect, so failures are never charged. While its work runs, the holder renews the reservation's lease
// (durable/account.ts), so one whose holder died is released by the Account alarm within a lease. Sync
// requests settle theirs through metered-response.ts; an async job's is opened by POST /v1/jobs and
// settled by its Job object, so this module knows no request.
import { accountStub, type AccountDO, type ReserveInput, type ReserveResult } from "../durable/account";
import { toApiError } from "../backend/errors";
import { TTL } from "../config";

/** What a reservation touches: the Account objects and the bucket that keeps stored responses. */
export interface LedgerBindings {
  ACCOUNT: DurableObjectNamespace<AccountDO>;
  RESULTS: R2Bucket;
}

/** Units and counts of a finished job, as the ledger and its usage event record them. */
export interface Usage {
  milli: number;
  images: number;
  steps: number;
}

/** A response kept for idempotent replays; the body is only serialized when it is stored. */
export interface StoredResponse {
  status: number;
  contentType: string;
  body: () => string;
}

export type Refusal = Exclude<ReserveResult, { ok: true }>;

/** What a finished piece of work hands to `settle`: its value, its usage and (sync requests) its response. */
export interface Settlement<T> {
  value: T;
  usage: Usage;
  response?: StoredResponse;
}

const idempotencyObjectKey = (accountId: string, jobId: string) => `idempotency/${accountId}/${jobId}`;

/** Ledger note for a released job: client cancellation or the public error code. */
export const releaseReason = (e: unknown): string => {
  const api = toApiError(e);
  return api.code === "cancelled" ? "cancelled by client" : `failed: ${api.code ?? api.status}`;
};

export class Reservation {
  private settled = false;

  private constructor(
    private readonly env: LedgerBindings,
    readonly accountId: string,
    readonly jobId: string,
    private readonly requestId: string | undefined,
    readonly idempotent: boolean,
    /** the lease this holder took (unknown when resumed: the first renewal reports it) */
    private readonly leaseMs?: number,
  ) {}

  /** Takes the slot and reserves `input.milli`, or says why not (concurrency, quota, the idempotency key). */
  static async open(env: LedgerBindings, accountId: string, input: ReserveInput & { requestId: string }): Promise<Reservation | Refusal> {
    const r = await accountStub(env, accountId).reserve(accountId, input);
    // a request hash is only sent for requests with an Idempotency-Key
    return r.ok ? new Reservation(env, accountId, input.jobId, input.requestId, input.requestHash !== undefined, input.leaseMs ?? TTL.reservationLeaseMs) : r;
  }

  /** The reservation an async job's creation opened, settled by its Job object (its 202 is already stored). */
  static resume(env: LedgerBindings, accountId: string, jobId: string, requestId: string): Reservation {
    return new Reservation(env, accountId, jobId, requestId, false);
  }

  private get ledger() {
    return accountStub(this.env, this.accountId);
  }

  private async store(r: StoredResponse): Promise<string> {
    const key = idempotencyObjectKey(this.accountId, this.jobId);
    await this.env.RESULTS.put(key, r.body(), { httpMetadata: { contentType: r.contentType }, customMetadata: { job_id: this.jobId, status: String(r.status) } });
    return key;
  }

  /** Charges `usage` once; stores the response first so a replay can find it. */
  async commit(usage: Usage, response?: StoredResponse): Promise<boolean> {
    if (this.settled) return false;
    this.settled = true;
    const ref = this.idempotent && response ? await this.store(response) : undefined;
    const r = await this.ledger.commit({
      jobId: this.jobId,
      milli: usage.milli,
      images: usage.images,
      steps: usage.steps,
      requestId: this.requestId,
      responseRef: ref,
      responseStatus: response?.status,
    });
    return r.changed;
  }

  async release(reason: string): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.ledger.release(this.jobId, reason);
  }

  /**
   * Keeps the response of a request whose reservation outlives it (async job creation answers 202 and its
   * Job object settles later), so a retry with the same Idempotency-Key replays it.
   */
  async keepResponse(response: StoredResponse): Promise<void> {
    if (!this.idempotent) return;
    await this.ledger.attachResponse(this.jobId, await this.store(response), response.status);
  }

  /**
   * Renews the lease every third of its length until stopped, or until the row is no longer reserved
   * (settled, or released because an earlier renewal came too late). Renewing charges nothing. A renewal
   * that fails is retried at the next tick: the lease outlasts two lost ones.
   */
  private holdLease(): () => void {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      if (stopped) return;
      let lease = this.leaseMs ?? TTL.reservationLeaseMs;
      try {
        const r = await this.ledger.renew(this.jobId);
        if (r.status !== "reserved") return;
        lease = r.leaseMs ?? lease;
      } catch {
        // the Account object was unreachable this time; the next tick tries again
      }
      if (!stopped) timer = setTimeout(() => void tick(), Math.max(10, lease / 3));
    };
    // a resumed reservation may have waited (a queued job): renew at once, which also says how long it holds
    if (this.leaseMs === undefined) void tick();
    else timer = setTimeout(() => void tick(), Math.max(10, this.leaseMs / 3));
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /**
   * Runs `work`, holding the lease while it runs, and commits the usage it reports. If it throws, or `cancel` fired by the time it finished
   * (the client left), the error is rethrown after the reservation is settled: a cancelled request is
   * charged what `chargeOnCancel` reports (the work that ran, once output reached the client), anything
   * else is released with the reason, uncharged.
   */
  async settle<T>(work: () => Promise<Settlement<T>>, cancel?: AbortSignal, chargeOnCancel?: () => Usage | undefined): Promise<T> {
    // renewals run until the settlement is written (storing a response for replays takes a moment too)
    const stopRenewing = this.holdLease();
    try {
      let done: Settlement<T>;
      try {
        done = await work();
        cancel?.throwIfAborted();
      } catch (e) {
        const partial = cancel?.aborted ? chargeOnCancel?.() : undefined;
        if (partial && partial.milli > 0) await this.commit(partial);
        else await this.release(releaseReason(cancel?.aborted ? new DOMException("cancelled", "AbortError") : e));
        throw e;
      }
      await this.commit(done.usage, done.response);
      return done.value;
    } finally {
      stopRenewing();
    }
  }
}
