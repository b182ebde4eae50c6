// The usage queue's consumer failing: no usage event is lost. D1 is made to refuse writes for real (a
// trigger that aborts one account's inserts: a poisoned message; the table renamed away: an outage), the
// consumers run on message batches as the queue delivers them, the dead-letter consumer parks what D1 still
// refuses in R2, and POST /admin/usage/replay writes it back, idempotent per event id.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../../edge/src/index";
import { usageEvent, type UsageEvent } from "../../edge/src/metering";
import { ADMIN, call, testEnv, uniq } from "./support/helpers";

const event = (account: string, milli: number): UsageEvent =>
  usageEvent(`job_${uniq("dlq").replace(/-/g, "")}`, { account_id: account, key_id: "key_dlq", task: "image_generation", units_milli: milli, images: 1, steps: 8 });

async function deliver(queue: string, events: unknown[], attempts = 1) {
  const batch = createMessageBatch(
    queue,
    events.map((body, i) => ({ id: `msg-${i}-${uniq()}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, testEnv);
  const result = await getQueueResult(batch, ctx);
  const idOf = new Map(batch.messages.map((m) => [m.id, (m.body as UsageEvent).id]));
  return { acked: result.explicitAcks.map((id: string) => idOf.get(id)), retried: result.retryMessages.map((r: { msgId: string }) => idOf.get(r.msgId)) };
}

const rows = async (account: string) =>
  (await testEnv.DB.prepare("SELECT id, units_milli FROM usage_events WHERE account_id = ? ORDER BY id").bind(account).all<{ id: string; units_milli: number }>()).results;

const replay = async () => {
  const res = await call("/admin/usage/replay", { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { replayed: number; already_present: number; failed: number; malformed: number };
};

afterEach(async () => {
  await testEnv.DB.exec("DROP TRIGGER IF EXISTS poison");
  const down = await testEnv.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'usage_events_down'").first();
  if (down) await testEnv.DB.exec("ALTER TABLE usage_events_down RENAME TO usage_events");
});

describe("usage events when the consumer fails", () => {
  it("a poisoned message does not hold back its batch: the others are written, only it is retried", async () => {
    const good = uniq("acct-good");
    const bad = uniq("acct-poison");
    await testEnv.DB.exec(`CREATE TRIGGER poison BEFORE INSERT ON usage_events WHEN NEW.account_id = '${bad}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
    const events = [event(good, 10), event(good, 20), event(bad, 30), event(good, 40)];
    const r = await deliver("dimoo-usage", events);
    expect(r.retried).toEqual([events[2].id]);
    expect(r.acked.sort()).toEqual([events[0].id, events[1].id, events[3].id].sort());
    expect((await rows(good)).map((x) => x.units_milli).sort((a, b) => a - b)).toEqual([10, 20, 40]);
  });

  it("D1 down through every retry: dead letters are parked in R2, replayed once D1 is back, each event counted once", async () => {
    const acct = uniq("acct-outage");
    const events = Array.from({ length: 12 }, (_, i) => event(acct, 100 + i));
    await testEnv.DB.exec("ALTER TABLE usage_events RENAME TO usage_events_down");
    // the queue's own retries all fail ...
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await deliver("dimoo-usage", events, attempt);
      expect(r.acked).toEqual([]);
      expect(r.retried).toHaveLength(events.length);
    }
    // ... so the queue hands them to the dead-letter queue, whose consumer parks them and acks
    const dl = await deliver("dimoo-usage-dlq", events);
    expect(dl.retried).toEqual([]);
    expect(dl.acked).toHaveLength(events.length);
    const parked = await testEnv.RESULTS.list({ prefix: "usage-dlq/" });
    expect(parked.objects.filter((o) => events.some((e) => o.key.includes(e.id)))).toHaveLength(events.length);
    // parking the same dead letter twice (a redelivery) keeps one copy
    await deliver("dimoo-usage-dlq", [events[0]]);

    // a replay while D1 is still down writes nothing and keeps everything parked
    const early = await replay();
    expect(early.replayed).toBe(0);
    expect(early.failed).toBeGreaterThanOrEqual(events.length);

    await testEnv.DB.exec("ALTER TABLE usage_events_down RENAME TO usage_events");
    // one event got through meanwhile (a late redelivery): the replay must not count it twice
    await deliver("dimoo-usage", [events[5]]);
    const report = await replay();
    expect(report).toMatchObject({ replayed: events.length - 1, already_present: 1, failed: 0 });
    expect(await replay()).toMatchObject({ replayed: 0, already_present: 0, failed: 0 });
    const written = await rows(acct);
    expect(written.map((x) => x.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(written.reduce((a, x) => a + x.units_milli, 0)).toBe(events.reduce((a, e) => a + e.data.units_milli, 0));
    // and a redelivery after the replay changes nothing
    await deliver("dimoo-usage", events.slice(0, 3));
    expect(await rows(acct)).toHaveLength(events.length);
  });

  it("the dead-letter consumer writes to D1 directly when D1 is back, parking nothing", async () => {
    const acct = uniq("acct-dl-ok");
    const events = [event(acct, 1), event(acct, 2)];
    const r = await deliver("dimoo-usage-dlq", events);
    expect(r.acked).toHaveLength(2);
    expect((await testEnv.RESULTS.list({ prefix: "usage-dlq/" })).objects.filter((o) => events.some((e) => o.key.includes(e.id)))).toEqual([]);
    expect(await rows(acct)).toHaveLength(2);
  });

  it("a body that is not a usage event is parked for inspection, acked and never replayed", async () => {
    const r = await deliver("dimoo-usage", [{ nope: true }, { specversion: "1.0", id: "x", data: { account_id: "a", units_milli: 1 } }]);
    expect(r.retried).toEqual([]);
    expect(r.acked).toHaveLength(2);
    const malformed = await testEnv.RESULTS.list({ prefix: "usage-dlq/malformed/" });
    expect(malformed.objects.length).toBeGreaterThanOrEqual(2);
    expect((await replay()).malformed).toBeGreaterThanOrEqual(2);
  });
});
