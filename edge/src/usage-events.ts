// The usage-event table in D1 and its parking lot in R2. Every write is keyed by the CloudEvent id (= job
// id), so an event written twice, redelivered by the queue or replayed by an operator, counts once. Events
// the consumers could not write (D1 failing past the queue's retries, or a body that is not a usage event)
// are parked as one R2 object each under `usage-dlq/` and written again by the replay
// (POST /admin/usage/replay): nothing the Account objects committed is dropped on the way to billing.
import type { UsageEvent } from "./metering";

/** What writing and parking need: the D1 database and the bucket that holds parked events. */
export interface UsageStoreBindings {
  DB: D1Database;
  RESULTS: R2Bucket;
}

export const PARKED_PREFIX = "usage-dlq/";
const MALFORMED_PREFIX = `${PARKED_PREFIX}malformed/`;

/** A body the usage table can take: every column it fills is present and of its type. */
export function isUsageEvent(e: unknown): e is UsageEvent {
  const u = e as UsageEvent;
  return (
    !!u &&
    u.specversion === "1.0" &&
    typeof u.id === "string" &&
    u.id.length > 0 &&
    typeof u.time === "string" &&
    /^\d{4}-\d{2}-\d{2}T/.test(u.time) &&
    typeof u.data?.account_id === "string" &&
    typeof u.data.task === "string" &&
    (u.data.key_id === undefined || u.data.key_id === null || typeof u.data.key_id === "string") &&
    Number.isSafeInteger(u.data.units_milli)
  );
}

const insert = (db: D1Database, e: UsageEvent, now: number) =>
  db
    .prepare("INSERT OR IGNORE INTO usage_events (id, account_id, key_id, task, units_milli, day, time, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    .bind(e.id, e.data.account_id, e.data.key_id ?? null, e.data.task, e.data.units_milli, e.time.slice(0, 10), e.time, now);

/** Writes events in one D1 batch (all or none); returns how many were new. */
export async function writeUsageEvents(db: D1Database, events: UsageEvent[], now = Date.now()): Promise<number> {
  if (events.length === 0) return 0;
  const results = await db.batch(events.map((e) => insert(db, e, now)));
  return results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
}

/** Keeps an event that could not be written; one object per event id, so parking it twice is harmless. */
export async function parkUsageEvent(bucket: R2Bucket, event: UsageEvent, reason: string): Promise<void> {
  await bucket.put(`${PARKED_PREFIX}${encodeURIComponent(event.id)}.json`, JSON.stringify(event), {
    httpMetadata: { contentType: "application/json" },
    customMetadata: { reason: reason.slice(0, 200), parked_at: new Date().toISOString() },
  });
}

/** Keeps a message body that is not a usage event, for a person to look at (never replayed). */
export async function parkMalformed(bucket: R2Bucket, messageId: string, body: unknown): Promise<void> {
  let text: string;
  try {
    text = JSON.stringify(body) ?? String(body);
  } catch {
    text = String(body);
  }
  await bucket.put(`${MALFORMED_PREFIX}${encodeURIComponent(messageId)}.json`, text.slice(0, 1_000_000), { customMetadata: { parked_at: new Date().toISOString() } });
}

export interface ReplayReport {
  /** parked events written to D1 now */
  replayed: number;
  /** parked events D1 already had (written meanwhile, or replayed before): removed, not counted twice */
  already_present: number;
  /** parked events that still could not be written: left in place for the next replay */
  failed: number;
  /** bodies parked as malformed (not usage events): kept for inspection, never replayed */
  malformed: number;
}

/** Writes every parked event to D1 and removes the ones now there. Idempotent: a second run finds none. */
export async function replayParkedUsage(env: UsageStoreBindings, limit = 1000): Promise<ReplayReport> {
  const report: ReplayReport = { replayed: 0, already_present: 0, failed: 0, malformed: 0 };
  let cursor: string | undefined;
  let seen = 0;
  do {
    const page = await env.RESULTS.list({ prefix: PARKED_PREFIX, cursor, limit: 100 });
    for (const obj of page.objects) {
      if (obj.key.startsWith(MALFORMED_PREFIX)) {
        report.malformed++;
        continue;
      }
      if (++seen > limit) return report;
      const body = await env.RESULTS.get(obj.key);
      if (!body) continue;
      const event: unknown = await body.json().catch(() => undefined);
      if (!isUsageEvent(event)) {
        report.failed++;
        continue;
      }
      try {
        const changed = await writeUsageEvents(env.DB, [event]);
        if (changed > 0) report.replayed++;
        else report.already_present++;
        await env.RESULTS.delete(obj.key);
      } catch {
        report.failed++;
      }
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return report;
}
