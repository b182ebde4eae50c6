// The bytes one guided 1024x1024 text-to-image step puts on the wire per request (scripts/bench/step-bytes.ts
// says what is measured): the budget (issue 11) is 128 KB per request-step with the cache off and on, on the
// worst steps, through the real sampler, packers, Triton adapter and embedded backend.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { start as startEmbedded, type EmbeddedBackend } from "../../../gpu-backend/src/embedded/server";
import { TRANSFORMER_CACHED_MODEL } from "../../../gpu-backend/src/engine/contract";
import { measureWorstStepBytes, WIRE_BUDGET_BYTES, wireCountingEngine, type WorstStepBytes } from "../../../scripts/bench/step-bytes";

let backend: EmbeddedBackend;
let measured: WorstStepBytes;

beforeAll(async () => {
  backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0 });
  const { engine, wire } = wireCountingEngine(backend.url);
  try {
    measured = await measureWorstStepBytes(engine, wire);
  } finally {
    engine.client.close();
  }
}, 600_000);

afterAll(async () => {
  await backend?.close();
});

describe("bytes on the wire per request-step, guided 1024x1024 text-to-image", () => {
  it("cache off: at most 128 KB on the first step", () => {
    const m = measured.uncached;
    expect(m.tokens).toBe(4096);
    console.log(`[wire] cache off, first step (L=${m.length}): ${m.sent} B sent + ${m.received} B received = ${m.sent + m.received} B`);
    expect(m.sent + m.received).toBeLessThanOrEqual(WIRE_BUDGET_BYTES);
  });

  it("cache on: at most 128 KB on a refresh and on a cached step that choose the next recompute set", () => {
    const { refresh: r, cached: c } = measured;
    console.log(`[wire] cache on, refresh step (L=${r.length}): ${r.sent} B sent + ${r.received} B received = ${r.sent + r.received} B`);
    console.log(`[wire] cache on, cached step (P=${c.recomputeLength}): ${c.sent} B sent + ${c.received} B received = ${c.sent + c.received} B`);
    expect(r.sent + r.received).toBeLessThanOrEqual(WIRE_BUDGET_BYTES);
    expect(c.minSetOk).toBe(true);
    expect(c.sent + c.received).toBeLessThanOrEqual(WIRE_BUDGET_BYTES);
    expect(backend.activeSequences(TRANSFORMER_CACHED_MODEL)).toBe(0);
  });
});
