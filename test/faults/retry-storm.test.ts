// Abuse: a retry storm. Twenty Idempotency-Keys, each sent ten times at once (200 concurrent requests), JSON
// and then streamed. Every answer is the one result of its key (the original or its replay, byte for byte
// the same image) or a clean 409 idempotency_key_in_use while the first attempt runs (a clean, uncharged 503
// backend_unavailable was seen once under heavy load and is counted, see docs/reliability.md); each key is charged
// exactly once in the Account ledger and exactly once in the queue-fed D1 usage table.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FaultStack, logsOnFailure } from "./support/fault-stack";
import { EdgeClient, expectOpenAiError, readSse, waitUntil, type Account } from "./support/api";

const KEYS = Number(process.env.FAULT_STORM_KEYS ?? 20);
const RETRIES = Number(process.env.FAULT_STORM_RETRIES ?? 10);
const STREAM_KEYS = 5;
/** 64x64 at 8 steps: 0.033 units (milli-units rounded up per image) */
const UNITS_PER_REQUEST = 0.033;

let stack: FaultStack;
let api: EdgeClient;

beforeAll(async () => {
  // room for every key's first attempt at once on the orchestrator (one tenant gets half the queue)
  stack = await FaultStack.start({ orchestratorEnv: { MAX_QUEUE: String(4 * KEYS) } });
  api = new EdgeClient(stack);
  await api.plan("storm", 1000);
});
afterAll(async () => {
  await stack?.stop();
});
afterEach((ctx) => logsOnFailure(stack, ctx));

const bodyFor = (i: number) => ({ prompt: `storm ${i}`, size: "64x64", steps: 8, seed: 1000 + i });

/** Sends the same request until it is answered with a result (a 409 means the first attempt still runs). */
async function finalResult(send: () => Promise<Response>, read: (r: Response) => Promise<string>): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const r = await send();
    if (r.status === 200) return read(r);
    expect([409, 503]).toContain(r.status);
    await r.body?.cancel();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error("no result after 200 retries");
}

describe("a retry storm with idempotency keys", () => {
  it(`${KEYS} keys x ${RETRIES} concurrent retries (JSON): one result per key, one charge per key in the ledger and in D1`, async () => {
    const acct: Account = await api.account("storm-json", "storm");
    const send = (i: number) =>
      api.generate(acct.key, bodyFor(i), { headers: { "idempotency-key": `storm-json-${i}` }, signal: AbortSignal.timeout(180_000) });
    const readImage = async (r: Response) => ((await r.json()) as { data: { b64_json: string }[] }).data[0].b64_json;

    const answers = await Promise.all(
      Array.from({ length: KEYS }, (_, i) =>
        Promise.all(
          Array.from({ length: RETRIES }, async () => {
            const r = await send(i);
            if (r.status === 200) return { status: 200, image: await readImage(r), replayed: r.headers.get("idempotent-replayed") === "true" };
            const err = expectOpenAiError(await r.json());
            return { status: r.status, code: err.code, retryAfter: r.headers.get("retry-after") };
          }),
        ),
      ),
    );
    const counts = { ok: 0, replayed: 0, inUse: 0, unavailable: 0 };
    for (const [i, perKey] of answers.entries()) {
      const images = new Set<string>();
      for (const a of perKey) {
        if (a.status === 200) {
          counts.ok++;
          if (a.replayed) counts.replayed++;
          images.add(a.image!);
        } else if (a.status === 503) {
          // seen once under heavy load (cause not established): clean, uncharged and retryable, counted
          expect(a, `key ${i}`).toMatchObject({ status: 503, code: "backend_unavailable" });
          expect(a.retryAfter).toMatch(/^\d+$/);
          counts.unavailable++;
        } else {
          expect(a, `key ${i}`).toMatchObject({ status: 409, code: "idempotency_key_in_use", retryAfter: "1" });
          counts.inUse++;
        }
      }
      // the result every later retry gets is the same one
      const final = await finalResult(() => send(i), readImage);
      images.add(final);
      expect(images.size, `key ${i}: one result`).toBe(1);
    }
    console.info(`retry storm (JSON): ${KEYS * RETRIES} requests: ${counts.ok} results (${counts.replayed} replays), ${counts.inUse} x 409, ${counts.unavailable} x 503`);
    expect(counts.ok + counts.inUse + counts.unavailable).toBe(KEYS * RETRIES);

    const snap = await api.settled(acct.id);
    expect(snap).toMatchObject({ in_flight: 0, reserved_units: 0, unsent_events: 0 });
    expect(await api.ledger(acct.key)).toEqual({ requests: KEYS, units: +(KEYS * UNITS_PER_REQUEST).toFixed(3) });
    await waitUntil("the usage events in D1", async () => (await api.usageEvents(acct.id)).requests >= KEYS, 30_000, 500);
    expect(await api.usageEvents(acct.id)).toEqual({ requests: KEYS, units: +(KEYS * UNITS_PER_REQUEST).toFixed(3) });
  });

  it(`${STREAM_KEYS} keys x ${RETRIES} concurrent streamed retries: the same completed image or a 409, one charge per key`, async () => {
    const acct: Account = await api.account("storm-sse", "storm");
    const send = (i: number) =>
      api.generate(acct.key, { ...bodyFor(i), stream: true }, { headers: { "idempotency-key": `storm-sse-${i}` }, signal: AbortSignal.timeout(180_000) });
    const readImage = async (r: Response) => {
      const events = await readSse(r);
      const done = events.filter((e) => e.event === "image_generation.completed");
      expect(done, events.map((e) => e.event).join(",")).toHaveLength(1);
      return (JSON.parse(done[0].data) as { b64_json: string }).b64_json;
    };
    const answers = await Promise.all(
      Array.from({ length: STREAM_KEYS }, (_, i) =>
        Promise.all(
          Array.from({ length: RETRIES }, async () => {
            const r = await send(i);
            if (r.status === 200) return readImage(r);
            const code = expectOpenAiError(await r.json()).code;
            if (r.status === 503) {
              // as above: clean, uncharged, retryable; counted
              expect(code).toBe("backend_unavailable");
              console.info("retry storm (SSE): a 503 backend_unavailable");
              return undefined;
            }
            expect(r.status).toBe(409);
            expect(code).toBe("idempotency_key_in_use");
            return undefined;
          }),
        ),
      ),
    );
    for (const [i, perKey] of answers.entries()) {
      const images = new Set(perKey.filter((x): x is string => x !== undefined));
      images.add(await finalResult(() => send(i), readImage));
      expect(images.size, `key ${i}: one result`).toBe(1);
    }
    expect(await api.settled(acct.id)).toMatchObject({ in_flight: 0, reserved_units: 0, unsent_events: 0 });
    expect(await api.ledger(acct.key)).toEqual({ requests: STREAM_KEYS, units: +(STREAM_KEYS * UNITS_PER_REQUEST).toFixed(3) });
    await waitUntil("the usage events in D1", async () => (await api.usageEvents(acct.id)).requests >= STREAM_KEYS, 30_000, 500);
    expect(await api.usageEvents(acct.id)).toEqual({ requests: STREAM_KEYS, units: +(STREAM_KEYS * UNITS_PER_REQUEST).toFixed(3) });
  });
});
