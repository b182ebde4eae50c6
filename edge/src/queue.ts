// Usage-event consumer (at-least-once delivery): each CloudEvent is written to D1 `usage_events` with its id
// (= job id) as primary key, so redeliveries are no-ops. This is where a billing forwarder (OpenMeter
// CloudEvents ingest, Stripe meter events with identifier = id) plugs in; both dedupe on the same id.
import type { Env } from "./env";
import type { UsageEvent } from "./metering";

const valid = (e: unknown): e is UsageEvent => {
  const u = e as UsageEvent;
  return !!u && u.specversion === "1.0" && typeof u.id === "string" && typeof u.data?.account_id === "string" && Number.isFinite(u.data?.units_milli);
};

export async function consumeUsage(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const now = Date.now();
  const good = batch.messages.filter((m) => valid(m.body));
  for (const m of batch.messages) {
    if (!valid(m.body)) {
      console.error(JSON.stringify({ level: "error", msg: "dropping malformed usage event", messageId: m.id }));
      m.ack();
    }
  }
  if (good.length === 0) return;
  try {
    await env.DB.batch(
      good.map((m) => {
        const e = m.body as UsageEvent;
        return env.DB.prepare("INSERT OR IGNORE INTO usage_events (id, account_id, key_id, task, units_milli, day, time, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").bind(
          e.id,
          e.data.account_id,
          e.data.key_id ?? null,
          e.data.task,
          e.data.units_milli,
          e.time.slice(0, 10),
          e.time,
          now,
        );
      }),
    );
    for (const m of good) m.ack();
  } catch (err) {
    console.error(JSON.stringify({ level: "warn", msg: "usage batch failed; retrying", error: String(err) }));
    for (const m of good) m.retry({ delaySeconds: 5 });
  }
}
