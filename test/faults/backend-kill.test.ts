// Fault: the model server (the embedded backend, standing in for Triton) dies in the middle of a step and
// comes back on the same address. Every in-flight request fails cleanly (OpenAI-shaped 5xx, or an SSE
// `error` event; a JSON answer already past its 1 s hold breaks its body), nothing is charged and no reservation is left; the orchestrator stays up, reports itself
// not ready while the backend is gone, reconnects by itself, and new requests succeed without restarting
// the orchestrator or the edge.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FaultStack, logsOnFailure } from "./support/fault-stack";
import { EdgeClient, expectFailedJson, expectOpenAiError, readSse, waitUntil, type Account } from "./support/api";

let stack: FaultStack;
let api: EdgeClient;
let acct: Account;

const LONG = { prompt: "a slow harbour", size: "256x256", steps: 256 };
const SHORT = { prompt: "a quick kite", size: "64x64", steps: 2, seed: 11 };

beforeAll(async () => {
  stack = await FaultStack.start();
  api = new EdgeClient(stack);
  await api.plan("faults", 8);
  acct = await api.account("backend-kill", "faults");
});
afterAll(async () => {
  await stack?.stop();
});
afterEach((ctx) => logsOnFailure(stack, ctx));

describe("the backend is killed mid-step and restarted", () => {
  it("fails the in-flight requests cleanly, and the orchestrator reconnects by itself", async () => {
    const ok = await api.generate(acct.key, SHORT);
    expect(ok.status).toBe(200);
    const before = await api.ledger(acct.key);

    // two JSON requests and one stream with previews, all running when the backend dies
    const json = [1, 2].map((seed) => api.generate(acct.key, { ...LONG, seed }, { signal: AbortSignal.timeout(60_000) }));
    const streamed = api.generate(acct.key, { ...LONG, seed: 3, stream: true, partial_images: 2 }, { signal: AbortSignal.timeout(60_000) });
    await waitUntil("three requests running", async () => ((await stack.health()).activeRequests ?? 0) >= 3, 30_000, 20);
    const orchestratorPid = stack.pid("orchestrator");
    await stack.kill("backend");

    for (const res of await Promise.all(json)) await expectFailedJson(res);
    const s = await streamed;
    expect(s.status).toBe(200);
    const events = await readSse(s);
    expect(events.at(-1)!.event).toBe("error");
    expectOpenAiError(JSON.parse(events.at(-1)!.data));

    // the orchestrator is still up, not ready, and holds nothing
    expect(stack.alive("orchestrator")).toBe(true);
    // (Connect JSON leaves out false and zero fields)
    await waitUntil("the orchestrator to report not ready", async () => (await stack.health()).ready !== true, 10_000, 100);
    const h = await stack.health();
    expect(h.ready ?? false).toBe(false);
    expect(h.activeRequests ?? 0).toBe(0);
    expect(h.queueDepth ?? 0).toBe(0);

    // while the backend is down the edge refuses cleanly; nothing reserved or charged
    await waitUntil("the edge to refuse with 503", async () => (await api.generate(acct.key, SHORT)).status === 503, 15_000, 500);
    const snap = await api.settled(acct.id);
    expect(snap).toMatchObject({ in_flight: 0, reserved_units: 0 });
    expect(await api.ledger(acct.key)).toEqual(before);

    // back on the same port: the orchestrator reconnects without a restart
    await stack.startPart("backend");
    await waitUntil("the orchestrator to be ready again", () => stack.orchestratorReady(), 30_000, 200);
    await waitUntil("the edge to see it", async () => (await fetch(`${stack.edgeUrl}/healthz`)).status === 200, 30_000, 250);
    const after = await api.generate(acct.key, SHORT, { signal: AbortSignal.timeout(60_000) });
    expect(after.status, await after.clone().text()).toBe(200);
    expect(await after.json()).toMatchObject({ data: [{ seed: 11 }] });
    // same orchestrator process throughout
    expect(stack.pid("orchestrator")).toBe(orchestratorPid);
    expect((await api.ledger(acct.key)).requests).toBe(before.requests + 1);
  });

  it("a second crash and restart works the same way (the reconnect is not a one-off)", async () => {
    const running = api.generate(acct.key, { ...LONG, seed: 9 }, { signal: AbortSignal.timeout(60_000) });
    await waitUntil("the request running", async () => ((await stack.health()).activeRequests ?? 0) >= 1, 30_000, 20);
    await stack.kill("backend");
    await expectFailedJson(await running);
    await stack.startPart("backend");
    await waitUntil("the orchestrator to be ready again", () => stack.orchestratorReady(), 30_000, 200);
    await waitUntil("a generation to go through", async () => (await api.generate(acct.key, SHORT)).status === 200, 20_000, 500);
    expect(await api.settled(acct.id)).toMatchObject({ in_flight: 0, reserved_units: 0 });
  });
});
