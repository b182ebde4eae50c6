// The service layer over the wire with a fake engine and toy samplers: the three protocols on one port,
// auth, error details, queueing, cancellation, metrics. The real pipelines are covered in tasks.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldViolationSchema, RetryInfoSchema, Task, type GenerateRequest, type UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { StepBatcher } from "../../../gpu-backend/src/batcher/step-batcher";
import { startOrchestratorServer, type OrchestratorServer } from "../../../gpu-backend/src/service/server";
import { OrchestratorMetrics, batcherMetricHooks } from "../../../gpu-backend/src/service/metrics";
import { silentLogger } from "../../../gpu-backend/src/service/log";
import { DEFAULT_LIMITS } from "../../../gpu-backend/src/tasks/limits";
import { validateGenerateParams } from "../../../gpu-backend/src/tasks/params";
import { validateUnderstandParams } from "../../../gpu-backend/src/tasks/understand";
import type { GeneratePipeline, GenerateSpec, ImageTask, TextTask, UnderstandPipeline, UnderstandSpec } from "../../../gpu-backend/src/tasks/task";
import { fakeRunner, ToyTask } from "../../unit/batcher/fake-engine";
import { auth, clientFor, collect, errorOf, FLAVOURS } from "./support";

const TOKEN = "test-token";

class ToyImage extends ToyTask implements ImageTask {
  get maskedRemaining() {
    return this.masked.length;
  }
  readonly promptTokens = 5;
  readonly cachedSteps = 0;
  get outputTokens() {
    return this.cells;
  }
}

class ToyText extends ToyTask implements TextTask {
  private sent = 0;
  takeDelta(): string {
    const n = this.history.length;
    const d = "w".repeat(n - this.sent);
    this.sent = n;
    return d;
  }
  text() {
    return "w".repeat(this.history.length);
  }
  finishReason() {
    return "stop" as const;
  }
  readonly promptTokens = 7;
  readonly outputTokens = 4;
}

const generatePipeline: GeneratePipeline<GenerateSpec, ToyImage> = {
  async validate(req: GenerateRequest) {
    const p = validateGenerateParams(req, DEFAULT_LIMITS);
    return { requestId: req.requestId, task: p.kind, width: p.width || 64, height: p.height || 64, steps: p.steps, seed: p.seed, mimeType: "image/png" };
  },
  async prepare(spec) {
    const cells = (spec.width / 16) * (spec.height / 16);
    return new ToyImage(Number(spec.seed % 1000n), cells, 8, Math.ceil(cells / spec.steps));
  },
  async preview() {
    return { bytes: await sharp({ create: { width: 8, height: 8, channels: 3, background: "#f00" } }).png().toBuffer(), mimeType: "image/png", width: 8, height: 8 };
  },
  async finish(spec, t) {
    const raw = Buffer.alloc(spec.width * spec.height * 3, t.seq[t.seq.length - 1] % 256);
    return { bytes: await sharp(raw, { raw: { width: spec.width, height: spec.height, channels: 3 } }).png().toBuffer(), mimeType: "image/png", width: spec.width, height: spec.height };
  },
};

const understandPipeline: UnderstandPipeline<UnderstandSpec, ToyText> = {
  async validate(req: UnderstandRequest) {
    const p = validateUnderstandParams(req, DEFAULT_LIMITS);
    return { requestId: req.requestId, seed: p.seed, maxTokens: p.maxTokens };
  },
  async prepare() {
    return new ToyText(3, 8, 6, 2, "text", 1);
  },
};

let server: OrchestratorServer;
let batcher: StepBatcher;
let metrics: OrchestratorMetrics;
const runner = fakeRunner(2);

beforeAll(async () => {
  metrics = new OrchestratorMetrics();
  batcher = new StepBatcher({ runner, maxActive: 2, maxQueue: 2, ...batcherMetricHooks(metrics) });
  server = await startOrchestratorServer(
    {
      token: TOKEN,
      limits: DEFAULT_LIMITS,
      batcher,
      generate: generatePipeline,
      understand: understandPipeline,
      health: { models: async () => [{ name: "dimoo_transformer", ready: true }] },
      metrics,
      log: silentLogger,
      modelName: "toy",
    },
    { port: 0, host: "127.0.0.1", metricsPort: 0, metricsHost: "127.0.0.1" },
  );
});

afterAll(async () => {
  await server?.close();
});

describe.each(FLAVOURS)("over %s", (flavour) => {
  it("streams accepted, progress and result", async () => {
    const client = clientFor(flavour, server.url);
    const events = await collect(
      client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "a cat", width: 64, height: 32, steps: 4, seed: 42n, previewEvery: 2, requestId: `rq-${flavour}` }, { headers: auth(TOKEN) }),
    );
    expect(events[0].event.case).toBe("accepted");
    const progress = events.filter((e) => e.event.case === "progress").map((e) => e.event.value as { step: number; preview: Uint8Array });
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(progress[1].preview.length).toBeGreaterThan(0);
    const last = events[events.length - 1];
    expect(last.event.case).toBe("result");
    if (last.event.case !== "result") return;
    expect(last.event.value.seed).toBe(42n);
    expect(last.event.value.usage?.steps).toBe(4);
    const meta = await sharp(last.event.value.image).metadata();
    expect([meta.width, meta.height]).toEqual([64, 32]);
  });

  it("refuses a missing or wrong token with UNAUTHENTICATED", async () => {
    const client = clientFor(flavour, server.url);
    const e1 = await errorOf(() => client.health({}));
    expect(ConnectError.from(e1).code).toBe(Code.Unauthenticated);
    const e2 = await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "x" }, { headers: auth("nope") })));
    expect(ConnectError.from(e2).code).toBe(Code.Unauthenticated);
  });

  it("names the offending field in INVALID_ARGUMENT", async () => {
    const client = clientFor(flavour, server.url);
    const e = await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "  ", width: 64, height: 64 }, { headers: auth(TOKEN) })));
    const ce = ConnectError.from(e);
    expect(ce.code).toBe(Code.InvalidArgument);
    expect(ce.findDetails(FieldViolationSchema)[0]?.field).toBe("prompt");
  });

  it("answers Health, Capabilities and Understand", async () => {
    const client = clientFor(flavour, server.url);
    const h = await client.health({}, { headers: auth(TOKEN) });
    expect(h.ready).toBe(true);
    expect(h.maxQueue).toBe(2);
    const c = await client.capabilities({}, { headers: auth(TOKEN) });
    expect(c.tasks).toContain(Task.INPAINT);
    const ev = await collect(client.understand({ question: "what?", images: [new Uint8Array([1])] }, { headers: auth(TOKEN) }));
    expect(ev[0].event.case).toBe("accepted");
    expect(ev.filter((e) => e.event.case === "delta").length).toBeGreaterThan(0);
    expect(ev[ev.length - 1].event.case).toBe("result");
  });
});

describe("more transports on the same port", () => {
  it("serves Connect and gRPC-Web over HTTP/2 (h2c) too", async () => {
    const { createConnectTransport, createGrpcWebTransport } = await import("@connectrpc/connect-node");
    const { createClient } = await import("@connectrpc/connect");
    const { DimooService } = await import("../../../proto/gen/dimoo/v1/dimoo_pb");
    for (const transport of [createConnectTransport({ baseUrl: server.url, httpVersion: "2" }), createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" })]) {
      const client = createClient(DimooService, transport);
      const events = await collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "h2", width: 32, height: 32, steps: 2 }, { headers: auth(TOKEN) }));
      expect(events[events.length - 1].event.case).toBe("result");
    }
  });

  it("rejects an unusable request id", async () => {
    const e = await errorOf(() => collect(clientFor("connect", server.url).generate({ task: Task.TEXT_TO_IMAGE, prompt: "x", requestId: "has spaces in it" }, { headers: auth(TOKEN) })));
    expect(ConnectError.from(e).findDetails(FieldViolationSchema)[0]?.field).toBe("request_id");
  });
});

describe("load and lifecycle", () => {
  it("shares the host between the tenants the requests name: one tenant past its share is refused alone", async () => {
    const client = clientFor("connect", server.url);
    runner.delayMs = 20;
    try {
      // 2 slots, queue 2: a named tenant may hold 1 slot and queue 1 more.
      const ac = new AbortController();
      const held = [0, 1].map((i) =>
        collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: `a${i}`, width: 256, height: 256, steps: 200, seed: BigInt(i), tenant: { id: "acct-a" } }, { headers: auth(TOKEN), signal: ac.signal })).catch((e) => e),
      );
      while (batcher.activeCount < 1) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 30));
      expect(batcher.activeCount).toBe(1); // the second waits for its tenant, not for a slot
      const refused = await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "a2", width: 64, height: 64, steps: 2, tenant: { id: "acct-a" } }, { headers: auth(TOKEN) })));
      expect(ConnectError.from(refused).code).toBe(Code.ResourceExhausted);
      const other = await collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "b", width: 64, height: 64, steps: 2, tenant: { id: "acct-b", weight: 2 } }, { headers: auth(TOKEN) }));
      expect(other[other.length - 1].event.case).toBe("result");
      ac.abort();
      await Promise.all(held);
    } finally {
      runner.delayMs = 2;
    }
  });

  it("gives RESOURCE_EXHAUSTED with RetryInfo when the queue is full, and cancellation frees the slot", async () => {
    const client = clientFor("connect", server.url);
    runner.delayMs = 20;
    try {
      const controllers = Array.from({ length: 4 }, () => new AbortController());
      const started = controllers.map((ac, i) => {
        const it = client.generate({ task: Task.TEXT_TO_IMAGE, prompt: `p${i}`, width: 256, height: 256, steps: 200, seed: BigInt(i) }, { headers: auth(TOKEN), signal: ac.signal });
        return collect(it).catch((e) => e);
      });
      // 2 running + 2 queued: the next one is refused
      while (batcher.activeCount + batcher.queueDepth < 4) await new Promise((r) => setTimeout(r, 5));
      const e = await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "late", width: 64, height: 64, steps: 2 }, { headers: auth(TOKEN) })));
      const ce = ConnectError.from(e);
      expect(ce.code).toBe(Code.ResourceExhausted);
      expect(ce.findDetails(RetryInfoSchema)[0]?.retryAfterMs).toBeGreaterThan(0);
      // cancel everything: slots and queue entries are freed
      for (const ac of controllers) ac.abort();
      await Promise.all(started);
      for (let i = 0; i < 100 && batcher.activeCount + batcher.queueDepth > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(batcher.activeCount).toBe(0);
      expect(batcher.queueDepth).toBe(0);
      runner.delayMs = 2;
      const ok = await collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "after", width: 64, height: 64, steps: 2 }, { headers: auth(TOKEN) }));
      expect(ok[ok.length - 1].event.case).toBe("result");
    } finally {
      runner.delayMs = 2;
    }
  });

  it("honours deadline_ms", async () => {
    const client = clientFor("grpc", server.url);
    runner.delayMs = 20;
    try {
      const e = await errorOf(() =>
        collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "slow", width: 256, height: 256, steps: 200, deadlineMs: 150 }, { headers: auth(TOKEN) })),
      );
      expect(ConnectError.from(e).code).toBe(Code.DeadlineExceeded);
    } finally {
      runner.delayMs = 2;
    }
  });

  it("serves Prometheus metrics", async () => {
    const text = await (await fetch(`${server.metrics!.url}/metrics`)).text();
    expect(text).toMatch(/dimoo_orchestrator_queue_depth \d+/);
    expect(text).toMatch(/dimoo_orchestrator_active_requests \d+/);
    expect(text).toMatch(/dimoo_orchestrator_step_seconds_bucket\{le="[^"]+",part="engine"\}/);
    expect(text).toMatch(/dimoo_orchestrator_batch_size_count [1-9]/);
    expect(text).toMatch(/dimoo_orchestrator_errors_total\{code="RESOURCE_EXHAUSTED"\} [1-9]/);
  });
});
