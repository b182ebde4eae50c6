// Abuse: 200 Server-Sent-Event streams held open at once and dropped at random (before the first event, while
// queued, mid-generation, after a preview, or read to the end), each dropped one replaced at once, for
// FAULT_SOAK_SECONDS (default 60; FAULT_SOAK_STREAMS sets the count). Afterwards everything returns to its
// baseline: every account's reservations and slots, the orchestrator's queue and running batch, and its
// memory (live heap after a full collection, within a margin of the warmed-up baseline). Counts are printed for docs/reliability.md.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FaultStack, logsOnFailure } from "./support/fault-stack";
import { EdgeClient, waitUntil, type Account } from "./support/api";

const SECONDS = Number(process.env.FAULT_SOAK_SECONDS ?? 60);
const STREAMS = Number(process.env.FAULT_SOAK_STREAMS ?? 200);
const ACCOUNTS = 10;
/** how streams end, picked at random (FAULT_SOAK_PLANS=early,mid,preview,end narrows it down) */
const PLANS = (process.env.FAULT_SOAK_PLANS?.split(",") ?? ["early", "mid", "preview", "end", "mid", "preview"]) as ("early" | "mid" | "preview" | "end")[];
const MB = 1024 * 1024;

let stack: FaultStack;
let api: EdgeClient;
let accounts: Account[] = [];

beforeAll(async () => {
  // every stream admitted (queued if need be): one tenant may hold half of the queue
  stack = await FaultStack.start({ orchestratorEnv: { MAX_QUEUE: String(4 * STREAMS) } });
  api = new EdgeClient(stack);
  await api.plan("soak", Math.ceil(STREAMS / ACCOUNTS) + 4);
  accounts = await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => api.account(`soak-${i}`, "soak")));
});
afterAll(async () => {
  await stack?.stop();
});
afterEach((ctx) => logsOnFailure(stack, ctx, 200));

type Outcome = "completed" | "dropped_early" | "dropped_mid" | "dropped_after_preview" | "refused_429" | "refused_503" | "failed";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)];

/** One stream: opened, read, and dropped at a random point (or read to its end). */
async function oneStream(acct: Account, stopAt: number): Promise<Outcome> {
  const plan = pick(PLANS);
  const ac = new AbortController();
  const steps = 8 + Math.floor(Math.random() * 40);
  let res: Response;
  const dropTimer = plan === "early" ? setTimeout(() => ac.abort(), Math.random() * 300) : undefined;
  try {
    res = await api.generate(acct.key, { prompt: `soak ${Math.random()}`, size: "64x64", steps, stream: true, partial_images: 1 }, { signal: ac.signal });
  } catch {
    return "dropped_early";
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    clearTimeout(dropTimer);
    return res.status === 429 ? "refused_429" : res.status === 503 ? "refused_503" : "failed";
  }
  const dropAfterProgress = 1 + Math.floor(Math.random() * steps);
  let progress = 0;
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      if (Date.now() > stopAt) {
        ac.abort();
        return "dropped_mid";
      }
      const { value, done } = await reader.read();
      if (done) return "completed";
      if (value.includes("event: error")) return "failed";
      if (value.includes("image_generation.completed")) {
        await reader.cancel().catch(() => {});
        return "completed";
      }
      progress += value.split("image_generation.progress").length - 1;
      if (plan === "mid" && progress >= dropAfterProgress) {
        ac.abort();
        return "dropped_mid";
      }
      if (plan === "preview" && value.includes("image_generation.partial_image")) {
        ac.abort();
        return "dropped_after_preview";
      }
    }
  } catch {
    return ac.signal.aborted ? "dropped_early" : "failed";
  } finally {
    clearTimeout(dropTimer);
  }
}

const memory = async () => ({ heap: await stack.metric("dimoo_orchestrator_heap_used_bytes"), rss: await stack.metric("process_resident_memory_bytes") });

/** Streams kept open by `STREAMS` loops until `ms` from now; returns the outcome counts. */
async function soak(ms: number): Promise<Record<Outcome, number>> {
  const counts: Record<Outcome, number> = { completed: 0, dropped_early: 0, dropped_mid: 0, dropped_after_preview: 0, refused_429: 0, refused_503: 0, failed: 0 };
  const stopAt = Date.now() + ms;
  await Promise.all(
    Array.from({ length: STREAMS }, async (_, i) => {
      const acct = accounts[i % ACCOUNTS];
      while (Date.now() < stopAt) {
        const o = await oneStream(acct, stopAt);
        counts[o]++;
        // a slot freed by a drop is released a moment later: a 429 then means "retry", as for any client
        if (o === "refused_429" || o === "refused_503") await sleep(200 + Math.random() * 300);
      }
    }),
  );
  return counts;
}

async function expectBaseline(): Promise<void> {
  await waitUntil(
    "the orchestrator to hold no request",
    async () => {
      const h = await stack.health();
      return (h.activeRequests ?? 0) === 0 && (h.queueDepth ?? 0) === 0;
    },
    60_000,
    250,
  );
  for (const a of accounts) expect(await api.settled(a.id, 30_000), a.id).toMatchObject({ in_flight: 0, reserved_units: 0, unsent_events: 0 });
}

describe(`${STREAMS} concurrent SSE streams dropped at random for ${SECONDS} s`, () => {
  it("leaves no reservation, slot, queued request or memory behind", { timeout: (SECONDS + 180) * 1000 }, async () => {
    // warm-up: code paths compiled, pools and caches filled; the baseline is taken after it
    const warm = await soak(Math.min(15_000, SECONDS * 250));
    await expectBaseline();
    await stack.collectGarbage();
    const base = await memory();

    const t0 = Date.now();
    const samples: { t: number; heap: number; rss: number }[] = [];
    const sampler = setInterval(() => void memory().then((m) => samples.push({ t: Math.round((Date.now() - t0) / 1000), ...m }), () => {}), 5000);
    const counts = await soak(SECONDS * 1000);
    clearInterval(sampler);

    await expectBaseline();
    const before = await memory();
    await stack.collectGarbage();
    const after = await memory();
    const peak = samples.reduce((a, s) => Math.max(a, s.heap), 0);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.info(
      `stream soak: ${STREAMS} streams for ${SECONDS} s: ${total} streams (${JSON.stringify(counts)}); warm-up ${JSON.stringify(warm)}; ` +
        `orchestrator heap ${(base.heap / MB).toFixed(1)} MB before (after a full GC), ${(peak / MB).toFixed(1)} MB peak, ${(before.heap / MB).toFixed(1)} MB at the end, ${(after.heap / MB).toFixed(1)} MB after a full GC; ` +
        `RSS ${(base.rss / MB).toFixed(0)} -> ${(after.rss / MB).toFixed(0)} MB; samples ${JSON.stringify(samples.map((s) => [s.t, Math.round(s.heap / MB)]))}`,
    );
    expect(counts.failed).toBe(0);
    expect(counts.dropped_mid + counts.dropped_after_preview + counts.dropped_early).toBeGreaterThan(STREAMS / 2);
    if (PLANS.includes("end")) expect(counts.completed).toBeGreaterThan(0);
    // live memory after a full collection: back near the warmed-up baseline (what every request left behind)
    expect(after.heap).toBeLessThan(base.heap * 1.2 + 16 * MB);

    // and the stack still serves a plain request
    const ok = await api.generate(accounts[0].key, { prompt: "after the soak", size: "64x64", steps: 2 });
    expect(ok.status).toBe(200);
  });
});
