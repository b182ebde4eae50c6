// Usage-event consumers (at-least-once delivery). `dimoo-usage`: each CloudEvent is written to D1
// `usage_events` with its id (= job id) as primary key, so redeliveries are no-ops; a batch D1 refuses is
// written again event by event, so one event D1 cannot take (a poisoned message) does not hold back the
// others, and only the failing ones are retried. After the queue's retries (wrangler.toml max_retries) a
// message goes to `dimoo-usage-dlq`, whose consumer tries D1 once more and otherwise parks the event in R2
// (usage-events.ts) for POST /admin/usage/replay; it acks only once the event is in D1 or parked, so no
// committed usage is lost. This is where a billing forwarder (OpenMeter CloudEvents ingest, Stripe meter
// events with identifier = id) plugs in; both dedupe on the same id.
import type { UsageEvent } from "./metering";
import { isUsageEvent, parkMalformed, parkUsageEvent, writeUsageEvents, type UsageStoreBindings } from "./usage-events";

export const USAGE_QUEUE = "dimoo-usage";
export const USAGE_DEAD_LETTER_QUEUE = "dimoo-usage-dlq";
const RETRY_DELAY_S = 5;

const log = (level: "warn" | "error", msg: string, fields: Record<string, unknown> = {}) => console.error(JSON.stringify({ level, msg, ...fields }));

/** Writes the batch's events; returns the messages D1 refused (each tried on its own before giving up). */
async function write(batch: readonly Message<unknown>[], env: UsageStoreBindings): Promise<Message<unknown>[]> {
  const events = batch.map((m) => m.body as UsageEvent);
  let error: unknown;
  try {
    await writeUsageEvents(env.DB, events);
    return [];
  } catch (err) {
    error = err;
  }
  const refused: Message<unknown>[] = [];
  if (batch.length === 1) refused.push(...batch);
  else {
    for (const m of batch) {
      try {
        await writeUsageEvents(env.DB, [m.body as UsageEvent]);
      } catch (err) {
        error = err;
        refused.push(m);
      }
    }
  }
  if (refused.length > 0) log("warn", "usage events refused by D1", { count: refused.length, of: batch.length, first: (refused[0].body as UsageEvent).id, error: String(error).slice(0, 200) });
  return refused;
}

/** Bodies that are not usage events: parked for a person (retried if even that fails). */
async function setAsideMalformed(batch: MessageBatch<unknown>, env: UsageStoreBindings): Promise<Message<unknown>[]> {
  const good: Message<unknown>[] = [];
  for (const m of batch.messages) {
    if (isUsageEvent(m.body)) {
      good.push(m);
      continue;
    }
    try {
      await parkMalformed(env.RESULTS, m.id, m.body);
      log("error", "malformed usage message parked", { messageId: m.id });
      m.ack();
    } catch {
      m.retry({ delaySeconds: RETRY_DELAY_S });
    }
  }
  return good;
}

async function consumeUsage(batch: MessageBatch<unknown>, env: UsageStoreBindings): Promise<void> {
  const good = await setAsideMalformed(batch, env);
  const refused = new Set(await write(good, env));
  for (const m of good) {
    if (refused.has(m)) m.retry({ delaySeconds: RETRY_DELAY_S });
    else m.ack();
  }
}

async function consumeDeadLetters(batch: MessageBatch<unknown>, env: UsageStoreBindings): Promise<void> {
  const good = await setAsideMalformed(batch, env);
  const refused = new Set(await write(good, env));
  for (const m of good) {
    if (!refused.has(m)) {
      m.ack();
      continue;
    }
    try {
      await parkUsageEvent(env.RESULTS, m.body as UsageEvent, `D1 refused it after ${m.attempts} dead-letter attempt(s)`);
      log("error", "usage event parked for replay", { id: (m.body as UsageEvent).id });
      m.ack();
    } catch {
      m.retry({ delaySeconds: RETRY_DELAY_S });
    }
  }
}

/** The Worker's queue handler: one consumer per queue. */
export function consumeQueue(batch: MessageBatch<unknown>, env: UsageStoreBindings): Promise<void> {
  return batch.queue === USAGE_DEAD_LETTER_QUEUE ? consumeDeadLetters(batch, env) : consumeUsage(batch, env);
}
