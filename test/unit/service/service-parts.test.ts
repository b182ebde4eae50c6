import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { StepBatcher } from "../../../gpu-backend/src/batcher/step-batcher";
import { engineCallLimits, MAX_SEQUENCE_LENGTH } from "../../../gpu-backend/src/engine/call-limits";
import { mapEngineError } from "../../../gpu-backend/src/engine/triton-engine";
import { toOrchestratorError } from "../../../gpu-backend/src/errors";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { codeName, OrchestratorMetrics, startMetricsServer } from "../../../gpu-backend/src/service/metrics";
import { createLogger } from "../../../gpu-backend/src/service/log";
import { warmUpFromEnv } from "../../../gpu-backend/src/service/config";
import { toConnectError } from "../../../gpu-backend/src/service/errors";
import { FieldViolationSchema, RetryInfoSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { invalidArgument, resourceExhausted } from "../../../gpu-backend/src/errors";
import { fakeRunner, ToyTask } from "../batcher/fake-engine";

describe("engine call limits", () => {
  it("follow the TensorRT profiles", () => {
    expect(engineCallLimits(1000)).toEqual({ maxRows: 16, maxImageRequests: 8, maxTextRequests: 4 });
    expect(engineCallLimits(2560)).toEqual({ maxRows: 8, maxImageRequests: 4, maxTextRequests: 4 });
    expect(engineCallLimits(4608)).toEqual({ maxRows: 4, maxImageRequests: 2, maxTextRequests: 4 });
    expect(engineCallLimits(12288).maxRows).toBe(3);
    expect(MAX_SEQUENCE_LENGTH).toBe(12288);
  });

  it("bound every call the scheduler makes", async () => {
    const runner = fakeRunner(2);
    const s = new StepBatcher({ runner, callLimits: () => ({ maxRows: 100, maxImageRequests: 2, maxTextRequests: 1 }) });
    const done = [1, 2, 3, 4, 5].map(
      (seed) =>
        new Promise((resolve, reject) =>
          s.submit({ requestId: `r${seed}`, deadlineAt: Infinity, prepare: () => new ToyTask(seed, 12, 5, 4, seed % 2 ? "image" : "text"), onDone: resolve, onError: reject }),
        ),
    );
    await Promise.all(done);
    for (const c of runner.calls) {
      expect(c.image.count).toBeLessThanOrEqual(2);
      expect(c.text.count).toBeLessThanOrEqual(1);
    }
    expect(runner.calls.some((c) => c.image.count === 2)).toBe(true);
  });
});

describe("errors", () => {
  it("map Triton codes to what the caller should see", () => {
    expect(mapEngineError({ code: 14, message: "connect ECONNREFUSED" }, "m").code).toBe(Code.Unavailable);
    expect(mapEngineError({ code: 5, message: "unknown model" }, "m").code).toBe(Code.Unavailable);
    expect(mapEngineError({ code: 3, message: "bad shape" }, "m").code).toBe(Code.Internal);
    expect(mapEngineError({ code: 4, message: "deadline" }, "m").code).toBe(Code.DeadlineExceeded);
    expect(mapEngineError({ code: 1, message: "cancelled" }, "m").code).toBe(Code.Canceled);
    expect(mapEngineError(new Error("boom"), "m").code).toBe(Code.Internal);
  });

  it("carry FieldViolation and RetryInfo details on the wire", () => {
    const inv = toConnectError(invalidArgument("mask", "wrong size"));
    expect(inv.code).toBe(Code.InvalidArgument);
    expect(inv.findDetails(FieldViolationSchema)[0]).toMatchObject({ field: "mask" });
    const ex = toConnectError(resourceExhausted("full", 1234));
    expect(ex.findDetails(RetryInfoSchema)[0]).toMatchObject({ retryAfterMs: 1234 });
    expect(ex.metadata.get("retry-after-ms")).toBe("1234");
    const model = toOrchestratorError(new InvalidArgument("images[0]", "is not an image"));
    expect([model.code, model.field]).toEqual([Code.InvalidArgument, "images[0]"]);
  });
});

describe("metrics and logs", () => {
  it("serves the metrics on loopback unless told otherwise (they have no auth)", async () => {
    const m = await startMetricsServer(new OrchestratorMetrics().registry, 0);
    try {
      expect(m.host).toBe("127.0.0.1");
      expect((await fetch(`${m.url}/healthz`)).status).toBe(200);
    } finally {
      await m.close();
    }
  });

  it("render Prometheus text with labels", () => {
    const m = new OrchestratorMetrics();
    m.errors.inc({ code: codeName(Code.ResourceExhausted) });
    m.stepSeconds.observe(0.003, { part: "orchestrator" });
    m.queueDepth.collect(() => 7);
    const text = m.registry.render();
    expect(text).toContain('dimoo_orchestrator_errors_total{code="RESOURCE_EXHAUSTED"} 1');
    expect(text).toContain('dimoo_orchestrator_step_seconds_bucket{le="0.005",part="orchestrator"} 1');
    expect(text).toContain("dimoo_orchestrator_queue_depth 7");
    // memory, read at scrape time (the fault suite's stream soak compares it with its baseline)
    expect(Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(1e6);
    expect(Number(/^dimoo_orchestrator_heap_used_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(1e6);
    expect(codeName(Code.Canceled)).toBe("CANCELLED");
  });

  it("write one JSON object per line and drop user content and secrets", () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: "info" }).child({ requestId: "r1" });
    log.debug("hidden");
    log.info("hello", { prompt: "secret prompt", authorization: "Bearer x", token: "t", steps: 4, seed: 5n });
    expect(lines.length).toBe(1);
    const rec = JSON.parse(lines[0]);
    expect(rec).toMatchObject({ level: "info", msg: "hello", requestId: "r1", steps: 4, seed: "5" });
    expect(lines[0]).not.toContain("secret prompt");
    expect(lines[0]).not.toContain("Bearer");
  });
});

describe("WARM_UP", () => {
  it("is on by default, off on request, or a list of text-to-image sizes; anything else is refused by name", () => {
    expect(warmUpFromEnv({})).toEqual({});
    expect(warmUpFromEnv({ WARM_UP: "off" })).toBe(false);
    expect(warmUpFromEnv({ WARM_UP: "256x256, 1024x768" })).toEqual({ sizes: [[256, 256], [1024, 768]] });
    expect(() => warmUpFromEnv({ WARM_UP: "250x250" })).toThrow(/WARM_UP/);
    expect(() => warmUpFromEnv({ WARM_UP: "big" })).toThrow(/WARM_UP/);
  });
});
