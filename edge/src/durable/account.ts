// Account Durable Object (one per account, SQLite-backed): request rate (GCRA), concurrency slots, the
// monthly unit quota and the usage ledger keyed by job id. Every public method does its checks and writes in
// one synchronous SQLite transaction (no await in between), so decisions are atomic per account. The ledger
// row is also the idempotency record (job id = hash(account, Idempotency-Key)) and the usage outbox is the
// write-ahead log for the Queue: committed usage is enqueued until the send succeeds (alarm retries).
// A reservation is held by a lease that its holder renews while the work runs (services/reservation.ts);
// the alarm releases a reservation whose lease ran out, so a holder that died frees its slots and units
// within one lease, and a late commit of such a reservation still charges the work once.
import { DurableObject } from "cloudflare:workers";
import { gcra, type GcraResult } from "./gcra";
import { dayOf, monthOf, usageEvent, type UsageEvent, type UsageTask } from "../metering";
import { TTL } from "../config";

/** The one binding the Account object uses: the usage queue its outbox feeds. */
export interface AccountBindings {
  USAGE_QUEUE: Queue<UsageEvent>;
}

/** The Account object of `accountId` (one per account, wherever the request lands). */
export const accountStub = (env: { ACCOUNT: DurableObjectNamespace<AccountDO> }, accountId: string) => env.ACCOUNT.get(env.ACCOUNT.idFromName(accountId));

export interface RateLimits {
  rpm: number;
  burst: number;
}

export interface ReserveInput {
  jobId: string;
  keyId: string;
  task: UsageTask;
  milli: number;
  requestHash?: string;
  concurrency: number;
  /** concurrency slots this work takes: one per output image (n), one for a chat */
  slots?: number;
  /** how long the reservation holds without a renewal (default TTL.reservationLeaseMs) */
  leaseMs?: number;
  monthlyUnits: number;
  nowMs?: number;
}

export type LedgerStatus = "reserved" | "committed" | "released";

export type IdempotencyState =
  | { state: "new" }
  | { state: "in_progress" }
  | { state: "mismatch" }
  | { state: "completed"; responseRef: string | null; responseStatus: number | null };

export type ReserveResult =
  | { ok: true; attempt: number; activeSlots: number; usedMilli: number }
  | { ok: false; reason: "concurrency"; limit: number; active: number; requested: number }
  | { ok: false; reason: "quota"; limitMilli: number; usedMilli: number; requestedMilli: number; resetsAt: string }
  | ({ ok: false; reason: "idempotency" } & Exclude<IdempotencyState, { state: "new" }>);

export interface CommitInput {
  jobId: string;
  milli: number;
  images: number;
  steps: number;
  requestId?: string;
  responseRef?: string;
  responseStatus?: number;
  nowMs?: number;
}

export interface UsageRow {
  day: string;
  task: string;
  requests: number;
  units_milli: number;
}

export interface LedgerRow {
  job_id: string;
  key_id: string;
  task: string;
  status: LedgerStatus;
  reserved_milli: number;
  committed_milli: number;
  request_hash: string | null;
  response_ref: string | null;
  response_status: number | null;
  attempts: number;
  release_reason: string | null;
  created_ms: number;
  updated_ms: number;
  committed_ms: number | null;
  slots: number;
  lease_ms: number | null;
  lease_until_ms: number | null;
  [k: string]: SqlStorageValue;
}

/** The release reason the alarm writes; a commit may still turn such a row into a charge (late settle). */
export const LEASE_EXPIRED = "lease expired";

/** What a lease renewal found: the row's status, and the lease it now holds (ms) when still reserved. */
export type Renewal = { status: LedgerStatus | "missing"; leaseMs?: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rate (name TEXT PRIMARY KEY, tat_ms REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
  job_id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  task TEXT NOT NULL,
  status TEXT NOT NULL,
  reserved_milli INTEGER NOT NULL,
  committed_milli INTEGER NOT NULL DEFAULT 0,
  request_hash TEXT,
  response_ref TEXT,
  response_status INTEGER,
  attempts INTEGER NOT NULL DEFAULT 1,
  release_reason TEXT,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  committed_ms INTEGER,
  month TEXT,
  day TEXT
);
CREATE INDEX IF NOT EXISTS ledger_status ON ledger(status);
CREATE INDEX IF NOT EXISTS ledger_month ON ledger(month, status);
CREATE TABLE IF NOT EXISTS outbox (job_id TEXT PRIMARY KEY, event TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL);
`;

/** Columns added after the first schema; objects created before them get them on their next start. */
const LATER_COLUMNS: [string, string][] = [
  ["slots", "slots INTEGER NOT NULL DEFAULT 1"],
  ["lease_ms", "lease_ms INTEGER"],
  // rows from before leases have none: they expire TTL.reservationLeaseMs after their last update
  ["lease_until_ms", "lease_until_ms INTEGER"],
];

/** When a reserved row's lease ends (SQL; its one parameter is the default lease for rows from before leases). */
const LEASE_END = "COALESCE(lease_until_ms, updated_ms + ?)";

export class AccountDO extends DurableObject<AccountBindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: AccountBindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    const have = new Set(this.sql.exec<{ name: string }>("PRAGMA table_info(ledger)").toArray().map((c) => c.name));
    for (const [name, ddl] of LATER_COLUMNS) if (!have.has(name)) this.sql.exec(`ALTER TABLE ledger ADD COLUMN ${ddl}`);
  }

  private get accountId(): string {
    return (this.sql.exec("SELECT v FROM meta WHERE k = 'account'").toArray()[0]?.v as string) ?? "";
  }

  private remember(accountId: string): void {
    this.sql.exec("INSERT OR IGNORE INTO meta (k, v) VALUES ('account', ?)", accountId);
  }

  /** One request against the per-minute rate. */
  admit(accountId: string, limits: RateLimits, nowMs = Date.now()): GcraResult {
    this.remember(accountId);
    const tat = (this.sql.exec("SELECT tat_ms FROM rate WHERE name = 'requests'").toArray()[0]?.tat_ms as number) ?? 0;
    const r = gcra(nowMs, tat, limits.rpm, 60_000, Math.max(1, limits.burst));
    if (r.allowed) this.sql.exec("INSERT INTO rate (name, tat_ms) VALUES ('requests', ?) ON CONFLICT(name) DO UPDATE SET tat_ms = excluded.tat_ms", r.tatMs);
    return r;
  }

  private idempotencyState(row: LedgerRow | undefined, requestHash: string | undefined): IdempotencyState {
    if (!row) return { state: "new" };
    if (requestHash !== undefined && row.request_hash !== null && row.request_hash !== requestHash) return { state: "mismatch" };
    // A stored response (sync: at commit; async job: its 202 at creation) is replayed whatever came later.
    if (row.response_ref !== null) return { state: "completed", responseRef: row.response_ref, responseStatus: row.response_status };
    if (row.status === "reserved") return { state: "in_progress" };
    if (row.status === "committed") return { state: "completed", responseRef: null, responseStatus: null };
    return { state: "new" }; // released: failed or cancelled, nothing charged, the key may be retried
  }

  private row(jobId: string): LedgerRow | undefined {
    return this.sql.exec<LedgerRow>("SELECT * FROM ledger WHERE job_id = ?", jobId).toArray()[0];
  }

  /** Idempotency check before any work: the ledger row for this job id, compared to the request hash. */
  lookup(jobId: string, requestHash: string): IdempotencyState {
    return this.idempotencyState(this.row(jobId), requestHash);
  }

  private usedMilli(nowMs: number): number {
    const committed = this.sql
      .exec("SELECT COALESCE(SUM(committed_milli), 0) AS s FROM ledger WHERE status = 'committed' AND month = ?", monthOf(nowMs))
      .one().s as number;
    const reserved = this.sql.exec("SELECT COALESCE(SUM(reserved_milli), 0) AS s FROM ledger WHERE status = 'reserved'").one().s as number;
    return committed + reserved;
  }

  private activeSlots(): number {
    return this.sql.exec("SELECT COALESCE(SUM(slots), 0) AS n FROM ledger WHERE status = 'reserved'").one().n as number;
  }

  /** Takes a concurrency slot and reserves the estimated units, or says why not. Idempotent per job id. */
  async reserve(accountId: string, input: ReserveInput): Promise<ReserveResult> {
    const now = input.nowMs ?? Date.now();
    const leaseMs = Math.max(1, Math.round(input.leaseMs ?? TTL.reservationLeaseMs));
    const result = this.ctx.storage.transactionSync((): ReserveResult => {
      this.remember(accountId);
      const existing = this.row(input.jobId);
      const idem = this.idempotencyState(existing, input.requestHash);
      if (idem.state !== "new") return { ok: false, reason: "idempotency", ...idem };
      const active = this.activeSlots();
      const slots = Math.max(1, input.slots ?? 1);
      if (active + slots > input.concurrency) return { ok: false, reason: "concurrency", limit: input.concurrency, active, requested: slots };
      const used = this.usedMilli(now);
      const limitMilli = input.monthlyUnits * 1000;
      if (used + input.milli > limitMilli) {
        const d = new Date(now);
        const resetsAt = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString();
        return { ok: false, reason: "quota", limitMilli, usedMilli: used, requestedMilli: input.milli, resetsAt };
      }
      if (existing) {
        this.sql.exec(
          "UPDATE ledger SET status = 'reserved', reserved_milli = ?, attempts = attempts + 1, release_reason = NULL, updated_ms = ?, key_id = ?, slots = ?, lease_ms = ?, lease_until_ms = ? WHERE job_id = ?",
          input.milli,
          now,
          input.keyId,
          slots,
          leaseMs,
          now + leaseMs,
          input.jobId,
        );
      } else {
        this.sql.exec(
          "INSERT INTO ledger (job_id, key_id, task, status, reserved_milli, request_hash, created_ms, updated_ms, slots, lease_ms, lease_until_ms) VALUES (?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?)",
          input.jobId,
          input.keyId,
          input.task,
          input.milli,
          input.requestHash ?? null,
          now,
          now,
          slots,
          leaseMs,
          now + leaseMs,
        );
      }
      return { ok: true, attempt: (existing?.attempts ?? 0) + 1, activeSlots: active + slots, usedMilli: used + input.milli };
    });
    if (result.ok) await this.ensureAlarm(now + leaseMs);
    return result;
  }

  /**
   * reserved -> committed, exactly once: charges the actual units, frees the slot, writes the usage event
   * to the outbox and enqueues it in the background. A second commit, or a commit after a release, changes
   * nothing — except after a release by an expired lease: the holder was alive after all (slow, or its
   * renewals were lost) and finished the work, which is charged once, like any other.
   */
  async commit(input: CommitInput): Promise<{ changed: boolean; status: LedgerStatus | "missing" }> {
    const now = input.nowMs ?? Date.now();
    const outcome = this.ctx.storage.transactionSync(() => {
      const row = this.row(input.jobId);
      if (!row) return { changed: false, status: "missing" as const };
      const lateSettle = row.status === "released" && row.release_reason === LEASE_EXPIRED;
      if (row.status !== "reserved" && !lateSettle) return { changed: false, status: row.status };
      this.sql.exec(
        "UPDATE ledger SET status = 'committed', committed_milli = ?, response_ref = COALESCE(?, response_ref), response_status = COALESCE(?, response_status), committed_ms = ?, updated_ms = ?, month = ?, day = ? WHERE job_id = ?",
        input.milli,
        input.responseRef ?? null,
        input.responseStatus ?? null,
        now,
        now,
        monthOf(now),
        dayOf(now),
        input.jobId,
      );
      const event = usageEvent(
        input.jobId,
        {
          account_id: this.accountId,
          key_id: row.key_id,
          task: row.task as UsageTask,
          units_milli: input.milli,
          images: input.images,
          steps: input.steps,
          request_id: input.requestId,
        },
        new Date(now),
      );
      this.sql.exec("INSERT OR IGNORE INTO outbox (job_id, event, next_ms) VALUES (?, ?, ?)", input.jobId, JSON.stringify(event), now);
      return { changed: true, status: "committed" as const };
    });
    if (outcome.changed) {
      // The outbox row is durable; the send does not hold up the response. If this object is evicted before
      // the send finishes, the alarm set at reservation time (or a later commit) flushes it.
      this.ctx.waitUntil(this.flushOutbox(now));
    }
    return outcome;
  }

  /** reserved -> released (failure, cancellation, no backend): nothing is charged, the slot is freed. */
  release(jobId: string, reason: string, nowMs = Date.now()): { changed: boolean; status: LedgerStatus | "missing" } {
    return this.ctx.storage.transactionSync(() => {
      const row = this.row(jobId);
      if (!row) return { changed: false, status: "missing" as const };
      if (row.status !== "reserved") return { changed: false, status: row.status };
      this.sql.exec("UPDATE ledger SET status = 'released', release_reason = ?, updated_ms = ? WHERE job_id = ?", reason.slice(0, 200), nowMs, jobId);
      return { changed: true, status: "released" as const };
    });
  }

  /**
   * Extends a reserved row's lease by its length from now. Charges nothing and changes nothing else: the
   * holder calls it while its work runs. Any other status is reported, so the holder can stop renewing.
   */
  renew(jobId: string, nowMs = Date.now()): Renewal {
    const row = this.row(jobId);
    if (!row) return { status: "missing" };
    if (row.status !== "reserved") return { status: row.status };
    const leaseMs = row.lease_ms ?? TTL.reservationLeaseMs;
    this.sql.exec("UPDATE ledger SET lease_until_ms = ? WHERE job_id = ? AND status = 'reserved'", nowMs + leaseMs, jobId);
    return { status: "reserved", leaseMs };
  }

  /** Records the stored response of an idempotent request whose row stays reserved (async job creation). */
  attachResponse(jobId: string, responseRef: string, responseStatus: number): boolean {
    const r = this.sql.exec("UPDATE ledger SET response_ref = ?, response_status = ? WHERE job_id = ? AND response_ref IS NULL", responseRef, responseStatus, jobId);
    return r.rowsWritten > 0;
  }

  /** Committed usage by UTC day and task, for GET /v1/usage. */
  usage(fromDay: string, toDay: string): UsageRow[] {
    return this.sql
      .exec<UsageRow & Record<string, SqlStorageValue>>(
        "SELECT day, task, COUNT(*) AS requests, SUM(committed_milli) AS units_milli FROM ledger WHERE status = 'committed' AND day >= ? AND day <= ? GROUP BY day, task ORDER BY day, task",
        fromDay,
        toDay,
      )
      .toArray();
  }

  /** Quota and slot snapshot (usage endpoint, admin, tests). */
  snapshot(nowMs = Date.now()): { month: string; committedMilli: number; reservedMilli: number; activeSlots: number; outbox: number } {
    const month = monthOf(nowMs);
    const committedMilli = this.sql
      .exec("SELECT COALESCE(SUM(committed_milli), 0) AS s FROM ledger WHERE status = 'committed' AND month = ?", month)
      .one().s as number;
    const reservedMilli = this.sql.exec("SELECT COALESCE(SUM(reserved_milli), 0) AS s FROM ledger WHERE status = 'reserved'").one().s as number;
    const outbox = this.sql.exec("SELECT COUNT(*) AS n FROM outbox").one().n as number;
    return { month, committedMilli, reservedMilli, activeSlots: this.activeSlots(), outbox };
  }

  ledger(jobId?: string): LedgerRow[] {
    return jobId ? this.sql.exec<LedgerRow>("SELECT * FROM ledger WHERE job_id = ?", jobId).toArray() : this.sql.exec<LedgerRow>("SELECT * FROM ledger ORDER BY created_ms").toArray();
  }

  private async flushOutbox(nowMs = Date.now()): Promise<void> {
    const due = this.sql.exec<{ job_id: string; event: string; attempts: number }>("SELECT job_id, event, attempts FROM outbox WHERE next_ms <= ? LIMIT 100", nowMs).toArray();
    if (due.length === 0) return;
    try {
      await this.env.USAGE_QUEUE.sendBatch(due.map((r) => ({ body: JSON.parse(r.event) as UsageEvent, contentType: "json" as const })));
      for (const r of due) this.sql.exec("DELETE FROM outbox WHERE job_id = ?", r.job_id);
    } catch (err) {
      console.error(JSON.stringify({ level: "warn", msg: "usage enqueue failed; will retry", count: due.length, error: String(err) }));
      for (const r of due) {
        const backoff = Math.min(60_000, 1000 * 2 ** r.attempts);
        this.sql.exec("UPDATE outbox SET attempts = attempts + 1, next_ms = ? WHERE job_id = ?", nowMs + backoff, r.job_id);
      }
      await this.ensureAlarm(nowMs + 1000);
    }
  }

  private async ensureAlarm(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs) await this.ctx.storage.setAlarm(atMs);
  }

  /** Releases reservations whose lease ran out (their holder died mid-request) and retries unsent usage events. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const expired = this.sql
      .exec<{ job_id: string }>(`SELECT job_id FROM ledger WHERE status = 'reserved' AND ${LEASE_END} <= ?`, TTL.reservationLeaseMs, now)
      .toArray();
    for (const r of expired) this.release(r.job_id, LEASE_EXPIRED, now);
    await this.flushOutbox(now);
    const nextLease = this.sql.exec(`SELECT MIN(${LEASE_END}) AS m FROM ledger WHERE status = 'reserved'`, TTL.reservationLeaseMs).one().m as number | null;
    const nextOutbox = this.sql.exec("SELECT MIN(next_ms) AS m FROM outbox").one().m as number | null;
    const next = Math.min(nextLease ?? Infinity, nextOutbox ?? Infinity);
    // a lease is never cut short; a renewed one just finds the alarm early and sets the next
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(Math.max(next, now + 50));
  }
}
