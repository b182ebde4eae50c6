// Job Durable Object (one per async job, SQLite-backed): state machine queued -> running -> succeeded |
// failed | canceled, an append-only event log (for GET /v1/jobs/{id}/events), the result (R2 keys; URLs
// are signed when read) and webhook delivery with retries. The generation runs in the object's alarm, so it
// outlives the client connection; the reservation opened at creation (services/reservation.ts) is committed
// on success and released on failure or cancellation.
import { DurableObject } from "cloudflare:workers";
import { OrchestratorPool, type OrchestratorBindings } from "../backend/pool";
import { toApiError } from "../backend/errors";
import { runImages, type ImageSpec } from "../services/images";
import { runUnderstand, type UnderstandSpec } from "../services/understand";
import { imagesResponseBase, storeImages, streamEvent, type ResultBindings, type StoredImage } from "../services/image-output";
import { chatCompletion } from "../services/chat-output";
import { Reservation, type LedgerBindings, type Settlement } from "../services/reservation";
import { signedFileUrl } from "../signed-urls";
import { accountWebhookSecret, deliverWebhook } from "../webhooks";
import { TTL } from "../config";
import type { JobType } from "../schemas/jobs";

/** What the Job object uses: the orchestrators, the results bucket and signing secret, its account's ledger. */
export type JobBindings = OrchestratorBindings &
  ResultBindings &
  LedgerBindings & {
    /** "true" only for local development and tests: webhooks may go to private hosts (lib/url-policy.ts) */
    ALLOW_PRIVATE_URLS?: string;
  };

/** The Job object of `jobId`. */
export const jobStub = (env: { JOB: DurableObjectNamespace<JobDO> }, jobId: string) => env.JOB.get(env.JOB.idFromName(jobId));

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "canceled";
const TERMINAL: JobStatus[] = ["succeeded", "failed", "canceled"];

/** Spec as stored: input image bytes live in R2 under `inputs`. */
export type StoredSpec =
  | { type: "image_generation" | "image_edit"; spec: Omit<ImageSpec, "images" | "mask">; inputs: string[]; maskKey?: string }
  | { type: "chat_completion"; spec: Omit<UnderstandSpec, "images">; inputs: string[]; model: string };

export interface JobInit {
  id: string;
  accountId: string;
  keyId: string;
  origin: string;
  requestId: string;
  webhookUrl?: string;
  work: StoredSpec;
}

interface JobRow {
  id: string;
  account_id: string;
  key_id: string;
  type: JobType;
  status: JobStatus;
  origin: string;
  request_id: string;
  work: string;
  webhook_url: string | null;
  created_ms: number;
  started_ms: number | null;
  completed_ms: number | null;
  step: number | null;
  steps: number | null;
  result: string | null;
  error: string | null;
  webhook_attempts: number;
  webhook_state: string | null;
  webhook_next_ms: number | null;
  [k: string]: SqlStorageValue;
}

export interface JobEvent {
  seq: number;
  type: string;
  data: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS job (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, key_id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
  origin TEXT NOT NULL, request_id TEXT NOT NULL, work TEXT NOT NULL, webhook_url TEXT,
  created_ms INTEGER NOT NULL, started_ms INTEGER, completed_ms INTEGER, step INTEGER, steps INTEGER,
  result TEXT, error TEXT, webhook_attempts INTEGER NOT NULL DEFAULT 0, webhook_state TEXT, webhook_next_ms INTEGER
);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, data TEXT NOT NULL, ts INTEGER NOT NULL);
`;

export type CancelResult = { ok: true; job: Record<string, unknown> } | { ok: false; reason: "not_found" | "not_cancelable"; status?: JobStatus };

export class JobDO extends DurableObject<JobBindings> {
  private readonly sql: SqlStorage;
  /** the generation in progress in this instance, so that cancel() can stop it and settle its reservation */
  private running?: { abort: AbortController; reservation: Reservation };

  constructor(ctx: DurableObjectState, env: JobBindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  private row(): JobRow | undefined {
    return this.sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0];
  }

  private event(type: string, data: Record<string, unknown>): void {
    this.sql.exec("INSERT INTO events (type, data, ts) VALUES (?, ?, ?)", type, JSON.stringify(data), Date.now());
  }

  /** Creates the job (idempotent: a second create returns the existing job) and schedules the run. */
  async create(init: JobInit): Promise<Record<string, unknown>> {
    if (!this.row()) {
      const now = Date.now();
      this.sql.exec(
        "INSERT INTO job (id, account_id, key_id, type, status, origin, request_id, work, webhook_url, created_ms) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
        init.id,
        init.accountId,
        init.keyId,
        init.work.type,
        init.origin,
        init.requestId,
        JSON.stringify(init.work),
        init.webhookUrl ?? null,
        now,
      );
      this.event("job.queued", { id: init.id, status: "queued" });
      await this.ctx.storage.setAlarm(now);
    }
    return this.view(this.row()!);
  }

  async get(accountId: string): Promise<Record<string, unknown> | null> {
    const r = this.row();
    return r && r.account_id === accountId ? this.view(r) : null;
  }

  /** Events after `afterSeq`, and whether the job is finished (the SSE route stops then). */
  events(accountId: string, afterSeq: number): { events: JobEvent[]; done: boolean } | null {
    const r = this.row();
    if (!r || r.account_id !== accountId) return null;
    const events = this.sql.exec<JobEvent & Record<string, SqlStorageValue>>("SELECT seq, type, data FROM events WHERE seq > ? ORDER BY seq LIMIT 500", afterSeq).toArray();
    const last = this.sql.exec("SELECT MAX(seq) AS m FROM events").one().m as number;
    return { events, done: TERMINAL.includes(r.status) && (events.length === 0 || events[events.length - 1].seq === last) };
  }

  /** queued/running -> canceled, releasing the reservation; a finished job cannot be cancelled. */
  async cancel(accountId: string): Promise<CancelResult> {
    const r = this.row();
    if (!r || r.account_id !== accountId) return { ok: false, reason: "not_found" };
    if (r.status !== "queued" && r.status !== "running") return { ok: false, reason: "not_cancelable", status: r.status };
    this.finish("canceled", null, { message: "The job was cancelled.", type: "invalid_request_error", code: "cancelled" });
    const run = this.running;
    run?.abort.abort(new DOMException("cancelled", "AbortError"));
    await (run?.reservation ?? this.reservation(r)).release("cancelled by client");
    await this.scheduleWebhook();
    return { ok: true, job: await this.view(this.row()!) };
  }

  private reservation(r: JobRow): Reservation {
    return Reservation.resume(this.env, r.account_id, r.id, r.request_id);
  }

  private finish(status: JobStatus, result: unknown, error: { message: string; type: string; code: string | null } | null): void {
    const now = Date.now();
    this.sql.exec("UPDATE job SET status = ?, completed_ms = ?, result = ?, error = ? WHERE status IN ('queued', 'running')", status, now, result === null ? null : JSON.stringify(result), error ? JSON.stringify(error) : null);
    this.event(`job.${status}`, { status, ...(error ? { error } : {}) });
  }

  private async scheduleWebhook(): Promise<void> {
    const r = this.row();
    if (!r?.webhook_url || r.webhook_state) return;
    const now = Date.now();
    this.sql.exec("UPDATE job SET webhook_state = 'pending', webhook_next_ms = ?", now);
    await this.ctx.storage.setAlarm(now);
  }

  override async alarm(): Promise<void> {
    const r = this.row();
    if (!r) return;
    if (r.status === "queued" || r.status === "running") await this.run(r);
    await this.deliverDueWebhook();
  }

  private async loadInputs(keys: string[]): Promise<Uint8Array[]> {
    return Promise.all(
      keys.map(async (k) => {
        const obj = await this.env.RESULTS.get(k);
        if (!obj) throw new Error(`job input ${k} is missing`);
        return new Uint8Array(await obj.arrayBuffer());
      }),
    );
  }

  private async run(r: JobRow): Promise<void> {
    const work = JSON.parse(r.work) as StoredSpec;
    const run = { abort: new AbortController(), reservation: this.reservation(r) };
    this.running = run;
    this.sql.exec("UPDATE job SET status = 'running', started_ms = COALESCE(started_ms, ?) WHERE status = 'queued'", Date.now());
    this.event("job.running", { status: "running" });
    try {
      await run.reservation.settle(() => this.generate(r, work, run.abort.signal), run.abort.signal);
    } catch (e) {
      const status = this.row()?.status;
      if (status === "canceled") return; // cancel() settled the reservation and scheduled the webhook
      if (status === "succeeded") {
        // Only the charge failed: nothing renews the lease any more, so the alarm releases the row, uncharged,
        // within a lease (a commit that still arrives later charges it: durable/account.ts).
        console.error(JSON.stringify({ level: "error", msg: "job commit failed", jobId: r.id, error: String(e) }));
      } else {
        // settle() released before the status turns terminal, so whoever sees "failed" sees nothing reserved.
        const api = toApiError(e);
        this.finish("failed", null, { message: api.message, type: api.type, code: api.code });
      }
    } finally {
      this.running = undefined;
    }
    await this.scheduleWebhook();
  }

  /** Runs the job and records its result (status succeeded); throws if it was cancelled meanwhile. */
  private async generate(r: JobRow, work: StoredSpec, signal: AbortSignal): Promise<Settlement<void>> {
    const stillRunning = () => {
      if (this.row()?.status !== "running") throw new DOMException("cancelled", "AbortError");
    };
    const pool = OrchestratorPool.fromEnv(this.env);
    const inputs = await this.loadInputs(work.inputs);
    if (work.type === "chat_completion") {
      const spec: UnderstandSpec = { ...work.spec, images: inputs };
      const res = await runUnderstand(pool, spec, { requestId: r.request_id, signal });
      stillRunning();
      this.finish("succeeded", chatCompletion(`chatcmpl-${r.id.slice(4)}`, work.model, res), null);
      return { value: undefined, usage: { milli: res.unitsMilli, images: inputs.length, steps: res.steps } };
    }
    const mask = work.maskKey ? (await this.loadInputs([work.maskKey]))[0] : undefined;
    const spec: ImageSpec = { ...work.spec, images: inputs, mask };
    const prefix = work.type;
    const res = await runImages(pool, spec, {
      requestId: r.request_id,
      signal,
      onEvent: (e) => {
        if (e.type === "progress") this.sql.exec("UPDATE job SET step = ?, steps = ? WHERE status = 'running'", e.step, e.steps);
        const ev = streamEvent(prefix, spec, e);
        if (ev) this.event(ev.event, ev.data);
      },
    });
    stillRunning();
    const stored = await storeImages(this.env, r.account_id, r.id, spec, res.images);
    stillRunning();
    this.finish("succeeded", { ...imagesResponseBase(spec, res), stored }, null);
    return { value: undefined, usage: { milli: res.unitsMilli, images: res.images.length, steps: res.steps } };
  }

  private async deliverDueWebhook(): Promise<void> {
    const r = this.row();
    if (!r?.webhook_url || r.webhook_state !== "pending" || (r.webhook_next_ms ?? 0) > Date.now()) return;
    const whsec = await accountWebhookSecret(this.env.SIGNING_SECRET, r.account_id);
    // the URL is checked again at every attempt (inside deliverWebhook), not only when the job was created
    const policy = { allowPrivate: this.env.ALLOW_PRIVATE_URLS === "true" };
    const res = await deliverWebhook(r.webhook_url, whsec, `${r.id}.${r.status}`, await this.view(r), policy);
    const attempts = r.webhook_attempts + 1;
    if (res.ok) {
      this.sql.exec("UPDATE job SET webhook_state = 'delivered', webhook_attempts = ?", attempts);
      this.event("webhook.delivered", { status: res.status, attempts });
    } else if (res.refused || attempts >= TTL.webhookAttempts) {
      this.sql.exec("UPDATE job SET webhook_state = 'failed', webhook_attempts = ?", attempts);
      this.event("webhook.failed", { status: res.status, attempts, ...(res.refused ? { error: res.error } : {}) });
    } else {
      const next = Date.now() + TTL.webhookBackoffMs * 2 ** (attempts - 1);
      this.sql.exec("UPDATE job SET webhook_attempts = ?, webhook_next_ms = ?", attempts, next);
      await this.ctx.storage.setAlarm(next);
    }
  }

  /** Public job object; result image URLs are signed now (one hour). */
  private async view(r: JobRow): Promise<Record<string, unknown>> {
    const base = `${r.origin}/v1/jobs/${r.id}`;
    let result: unknown = null;
    if (r.result) {
      const stored = JSON.parse(r.result) as Record<string, unknown> & { stored?: StoredImage[] };
      if (stored.stored) {
        const { stored: images, ...rest } = stored;
        const data = await Promise.all(images.map(async (s) => ({ url: await signedFileUrl(this.env.SIGNING_SECRET, r.origin, s.key), seed: s.seed })));
        result = { ...rest, data };
      } else result = stored;
    }
    return {
      id: r.id,
      object: "job",
      type: r.type,
      status: r.status,
      created_at: Math.floor(r.created_ms / 1000),
      started_at: r.started_ms ? Math.floor(r.started_ms / 1000) : null,
      completed_at: r.completed_ms ? Math.floor(r.completed_ms / 1000) : null,
      progress: r.steps ? { step: r.step ?? 0, steps: r.steps } : null,
      result,
      error: r.error ? JSON.parse(r.error) : null,
      urls: { self: base, events: `${base}/events`, cancel: `${base}/cancel` },
    };
  }
}
