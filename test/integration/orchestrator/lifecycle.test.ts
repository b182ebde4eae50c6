// Load and failure behaviour against the embedded backend and the dev models: cancellation frees the slot,
// deadlines, queue full, Triton unreachable or dying mid-run, request ids into Triton, metrics and logs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema, Task, type GenerateEvent } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { EmbeddedBackend } from "../../../gpu-backend/src/embedded/server";
import type { Orchestrator } from "../../../gpu-backend/src/service/orchestrator";
import { createLogger } from "../../../gpu-backend/src/service/log";
import type { TritonClient } from "../../../gpu-backend/src/triton";
import { auth, clientFor, collect, deadPort, errorOf, startBackend, startOrch, TOKEN, waitFor } from "./support";
import { start as startEmbedded } from "../../../gpu-backend/src/embedded/server";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";

let backend: EmbeddedBackend;
let orch: Orchestrator;
const logLines: string[] = [];

beforeAll(async () => {
  backend = await startBackend();
  orch = await startOrch(backend.url, {
    batcher: { maxActive: 1, maxQueue: 1, maxBatchTokens: 8192 },
    log: createLogger({ level: "debug", write: (l) => logLines.push(l) }),
  });
});

afterAll(async () => {
  await orch?.close();
  await backend?.close();
});

const long = { task: Task.TEXT_TO_IMAGE, prompt: "a long running secret prompt", width: 256, height: 256, steps: 200 };

/** Starts a Generate stream; resolves `firstProgress` when step 1 arrives. */
function startStream(o: Orchestrator, req: Parameters<ReturnType<typeof clientFor>["generate"]>[0]) {
  const ac = new AbortController();
  const events: GenerateEvent[] = [];
  let onProgress!: () => void;
  const firstProgress = new Promise<void>((r) => (onProgress = r));
  const done = (async () => {
    for await (const ev of clientFor("connect", o.url).generate(req, { headers: auth(TOKEN), signal: ac.signal })) {
      events.push(ev);
      if (ev.event.case === "progress") onProgress();
    }
  })().then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  return { ac, events, firstProgress, done };
}

describe("lifecycle", () => {
  it("cancellation stops the request at the next step boundary and frees its slot for a queued one", async () => {
    const a = startStream(orch, { ...long, requestId: "cancel-a" });
    await a.firstProgress;
    const b = startStream(orch, { task: Task.TEXT_TO_IMAGE, prompt: "next", width: 64, height: 64, steps: 4, requestId: "cancel-b" });
    await waitFor(() => b.events.length > 0);
    expect(b.events[0].event.case).toBe("accepted");
    expect((b.events[0].event.value as { queuePosition: number }).queuePosition).toBe(1);
    expect(orch.batcher.activeCount).toBe(1);
    const t0 = Date.now();
    a.ac.abort();
    const err = await a.done;
    expect(err?.code).toBe(Code.Canceled);
    // B takes the slot right away and finishes; A stopped well before its 200 steps.
    expect(await b.done).toBeUndefined();
    expect(b.events[b.events.length - 1].event.case).toBe("result");
    expect(Date.now() - t0).toBeLessThan(10_000);
    await waitFor(() => orch.batcher.activeCount === 0 && orch.batcher.queueDepth === 0);
    const h = await clientFor("grpc", orch.url).health({}, { headers: auth(TOKEN) });
    expect([h.activeRequests, h.queueDepth]).toEqual([0, 0]);
    expect(a.events.filter((e) => e.event.case === "progress").length).toBeLessThan(200);
  });

  it("gives RESOURCE_EXHAUSTED with a retry hint when the queue is full", async () => {
    const a = startStream(orch, { ...long, requestId: "full-a" });
    await a.firstProgress;
    const b = startStream(orch, { ...long, requestId: "full-b" });
    await waitFor(() => b.events.length > 0);
    const e = ConnectError.from(await errorOf(() => collect(clientFor("grpc-web", orch.url).generate({ ...long, requestId: "full-c" }, { headers: auth(TOKEN) }))));
    expect(e.code).toBe(Code.ResourceExhausted);
    expect(e.findDetails(RetryInfoSchema)[0]?.retryAfterMs).toBeGreaterThan(0);
    a.ac.abort();
    b.ac.abort();
    await Promise.all([a.done, b.done]);
    await waitFor(() => orch.batcher.activeCount === 0 && orch.batcher.queueDepth === 0);
  });

  it("ends a request past deadline_ms (and past the caller's own timeout) with DEADLINE_EXCEEDED", async () => {
    const t0 = Date.now();
    const e1 = ConnectError.from(await errorOf(() => collect(clientFor("grpc", orch.url).generate({ ...long, deadlineMs: 600 }, { headers: auth(TOKEN) }))));
    expect(e1.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const e2 = ConnectError.from(await errorOf(() => collect(clientFor("grpc", orch.url).generate(long, { headers: auth(TOKEN), timeoutMs: 600 }))));
    expect(e2.code).toBe(Code.DeadlineExceeded);
    await waitFor(() => orch.batcher.activeCount === 0);
  });

  it("puts the caller's request id into Triton's request ids and keeps prompts and tokens out of the logs", async () => {
    const client = orch.engine.client as TritonClient & { infer: TritonClient["infer"] };
    const seen: string[] = [];
    const original = client.infer.bind(client);
    client.infer = (model, req) => {
      seen.push(`${model}:${req.requestId}`);
      return original(model, req);
    };
    try {
      const ev = await collect(
        clientFor("connect", orch.url).generate({ task: Task.TEXT_TO_IMAGE, prompt: "top secret words", width: 64, height: 64, steps: 2, requestId: "edge-req-42" }, { headers: auth(TOKEN) }),
      );
      expect(ev[ev.length - 1].event.case).toBe("result");
    } finally {
      client.infer = original;
    }
    expect(seen.some((s) => s.startsWith("dimoo_transformer:") && s.includes("edge-req-42"))).toBe(true);
    expect(seen.some((s) => s === "vq_decoder:edge-req-42/vq-decode")).toBe(true);
    const lines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.requestId === "edge-req-42" && l.msg === "request finished" && l.code === "OK")).toBe(true);
    expect(lines.filter((l) => l.requestId === "cancel-a" && l.msg === "request failed").map((l) => l.code)).toEqual(["CANCELLED"]);
    expect(lines.filter((l) => l.requestId === "full-c" && l.msg === "request failed").map((l) => l.code)).toEqual(["RESOURCE_EXHAUSTED"]);
    const all = logLines.join("\n");
    expect(all).not.toContain("top secret words");
    expect(all).not.toContain("long running secret prompt");
    expect(all).not.toContain(TOKEN);
  });

  it("exports Prometheus metrics: queue, active, batch size, step time split, errors by code", async () => {
    const text = await (await fetch(`${orch.metrics!.url}/metrics`)).text();
    if (process.env.DEBUG_METRICS) console.log(text.split("\n").filter((l) => l.includes("_total{")).join("\n"));
    expect(text).toMatch(/^dimoo_orchestrator_queue_depth 0$/m);
    expect(text).toMatch(/^dimoo_orchestrator_active_requests 0$/m);
    expect(text).toMatch(/^dimoo_orchestrator_batch_size_count [1-9]\d*$/m);
    expect(text).toMatch(/^dimoo_orchestrator_step_seconds_count\{part="engine"\} [1-9]\d*$/m);
    expect(text).toMatch(/^dimoo_orchestrator_step_seconds_count\{part="orchestrator"\} [1-9]\d*$/m);
    expect(text).toMatch(/^dimoo_orchestrator_errors_total\{code="RESOURCE_EXHAUSTED"\} 1$/m);
    expect(text).toMatch(/^dimoo_orchestrator_errors_total\{code="CANCELLED"\} 3$/m);
    expect(text).toMatch(/^dimoo_orchestrator_errors_total\{code="DEADLINE_EXCEEDED"\} 2$/m);
    expect(text).toMatch(/^dimoo_orchestrator_requests_total\{code="OK",method="Generate"\} [1-9]\d*$/m);
    expect(text).toMatch(/^dimoo_orchestrator_engine_call_seconds_count\{model="vq_decoder",ok="true"\} [1-9]\d*$/m);
  });
});

describe("Triton failures", () => {
  it("answers UNAVAILABLE quickly when Triton is unreachable, never hangs", async () => {
    const dead = await startOrch(`127.0.0.1:${await deadPort()}`);
    try {
      const client = clientFor("grpc", dead.url);
      let t0 = Date.now();
      const e = ConnectError.from(await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 64, height: 64, steps: 2 }, { headers: auth(TOKEN) }))));
      expect(e.code).toBe(Code.Unavailable);
      expect(Date.now() - t0).toBeLessThan(3_000);
      t0 = Date.now();
      const h = await client.health({}, { headers: auth(TOKEN) });
      expect(h.ready).toBe(false);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(dead.batcher.activeCount).toBe(0);
    } finally {
      await dead.close();
    }
  });

  it("fails running requests with UNAVAILABLE when Triton goes away mid-generation", async () => {
    const b2 = await startBackend();
    const o2 = await startOrch(b2.url);
    try {
      const a = startStream(o2, { ...long, requestId: "dies" });
      await a.firstProgress;
      const t0 = Date.now();
      await b2.close();
      const err = await a.done;
      expect(err?.code).toBe(Code.Unavailable);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(o2.batcher.activeCount).toBe(0);
    } finally {
      await o2.close();
      await b2.close().catch(() => {});
    }
  });
});

describe("start-up warm-up", () => {
  it("runs one request of every task family before Health says ready, and none of them fails", async () => {
    const lines: string[] = [];
    const o = await startOrch(backend.url, {
      batcher: { maxBatchTokens: 8192 },
      log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
      warmUp: { sizes: [[256, 256]], steps: 2 },
    });
    try {
      const client = clientFor("connect", o.url);
      expect((await client.health({}, { headers: auth(TOKEN) })).ready).toBe(false);
      await o.warmedUp;
      expect((await client.health({}, { headers: auth(TOKEN) })).ready).toBe(true);
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; family?: string; failed?: number });
      expect(logged.filter((l) => l.msg === "warmed").map((l) => l.family)).toEqual([
        "text-to-image 256x256",
        "edit 256x256 photo",
        "inpaint 256x256 photo",
        "understand 256x256 photo",
      ]);
      expect(logged.find((l) => l.msg === "warmed up")?.failed).toBe(0);
      expect(logged.some((l) => l.msg === "warm-up request failed")).toBe(false);
    } finally {
      await o.close();
    }
  }, 300_000);

  it("waits for an engine that starts after the orchestrator (npm start's order) before warming", async () => {
    const port = await deadPort();
    const lines: string[] = [];
    const o = await startOrch(`127.0.0.1:${port}`, {
      batcher: { maxBatchTokens: 8192 },
      log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
      warmUp: { sizes: [[256, 256]], steps: 2 },
    });
    let late: EmbeddedBackend | undefined;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect((await clientFor("connect", o.url).health({}, { headers: auth(TOKEN) })).ready).toBe(false);
      late = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port, host: "127.0.0.1" });
      await o.warmedUp;
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; failed?: number; mlCache?: boolean });
      expect(logged.some((l) => l.msg === "warm-up request failed")).toBe(false);
      expect(logged.find((l) => l.msg === "warmed up")).toMatchObject({ failed: 0, mlCache: true });
      expect((await clientFor("connect", o.url).health({}, { headers: auth(TOKEN) })).ready).toBe(true);
    } finally {
      await o.close();
      await late?.close();
    }
  }, 300_000);
});
