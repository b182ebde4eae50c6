// The cached transformer (dimoo_transformer_cached) served by the embedded backend through the Triton
// client, one Triton sequence per request: the generated dev model with its committed config (only the
// idle timeout shortened). Served steps equal the same steps run in process with the state carried by
// hand; interleaved sequences never see each other's state; a failed step leaves the state as it was; the
// state is released at END and after max_sequence_idle_microseconds.

import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedStepTensors, type CachedStep } from "../../../gpu-backend/src/builder/llada/cached-call";
import { devTransformerConfig, headDim } from "../../../gpu-backend/src/builder/llada/config";
import { DEV_CACHED_IDLE_MICROSECONDS, renderDevModelConfig } from "../../../gpu-backend/src/builder/repository/model-config";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { cachedTransformerStates, TRANSFORMER_CACHED_MODEL, TRANSFORMER_CACHED_STATE } from "../../../gpu-backend/src/engine/contract";
import type { InferParameters } from "../../../gpu-backend/src/triton/client";
import type { InputTensor } from "../../../gpu-backend/src/triton/datatypes";
import { Status, TritonError } from "../../../gpu-backend/src/triton/errors";
import { imageSequence } from "../../unit/builder/llada-support";
import { errorOf, startServer, type TestServer } from "./support";

const MODEL = TRANSFORMER_CACHED_MODEL;
const IDLE_MS = 500;
const cfg = devTransformerConfig();

let s: TestServer;
let local: ort.InferenceSession;

beforeAll(async () => {
  const modelDir = join(DEV_MODEL_REPOSITORY, MODEL, "1");
  const config = renderDevModelConfig(MODEL).replace(`max_sequence_idle_microseconds: ${DEV_CACHED_IDLE_MICROSECONDS}`, `max_sequence_idle_microseconds: ${IDLE_MS * 1000}`);
  expect(config).toContain(`max_sequence_idle_microseconds: ${IDLE_MS * 1000}`);
  s = await startServer({ [MODEL]: { config, linked: { 1: modelDir } } });
  local = await ort.InferenceSession.create(join(modelDir, "model.onnx"));
});

afterAll(async () => {
  await s?.stop();
  await local?.release();
});

interface StepResult {
  tokens: number[];
  confidence: number[];
  maxLogit: number[];
}

async function served(step: CachedStep, parameters: InferParameters): Promise<StepResult> {
  const inputs: Record<string, InputTensor> = {};
  for (const [k, t] of Object.entries(cachedStepTensors(step)))
    inputs[k] = t.type === "int32" ? { datatype: "INT32", shape: t.dims, data: t.data as Int32Array } : { datatype: "FP32", shape: t.dims, data: t.data as Float32Array };
  const r = await s.client.infer(MODEL, { inputs, parameters });
  return {
    tokens: Array.from(r.tensor("image_tokens", "INT32").data),
    confidence: Array.from(r.tensor("image_confidence", "FP32").data),
    maxLogit: Array.from(r.tensor("max_logit", "FP32").data),
  };
}

/** The same steps in process, the state carried by hand from Triton's [1, 1, width] zero initial state. */
async function inProcess(steps: CachedStep[]): Promise<StepResult[]> {
  const kv = cfg.nKvHeads * headDim(cfg);
  let state: Record<string, ort.Tensor> = {};
  for (const st of cachedTransformerStates(cfg.nLayers)) {
    const w = st === TRANSFORMER_CACHED_STATE.logits ? 8192 : kv;
    state[st.input] = new ort.Tensor("float32", new Float32Array(w), [1, 1, w]);
  }
  const out: StepResult[] = [];
  for (const step of steps) {
    const feeds = { ...state };
    for (const [k, t] of Object.entries(cachedStepTensors(step))) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
    const r = await local.run(feeds);
    out.push({
      tokens: Array.from(r.image_tokens.data as Int32Array),
      confidence: Array.from(r.image_confidence.data as Float32Array),
      maxLogit: Array.from(r.max_logit.data as Float32Array),
    });
    state = {};
    for (const st of cachedTransformerStates(cfg.nLayers)) state[st.input] = r[st.output];
  }
  return out;
}

/** A request's steps: refresh, two cached steps, a refresh, a cached step (the ML-Cache's rhythm). */
function plan(seed: number, lens: number[]): CachedStep[] {
  const L = Math.max(...lens);
  const seq = imageSequence(lens.length, L, lens, seed);
  const w = lens.length === 2 ? [5, -4] : [7.5, -2.5, -4];
  return ([null, [3, 2, 4], [5, 1, 2], null, [2, 2, 2]] as Array<number[] | null>).map((sizes) => seq.next(sizes && sizes.slice(0, lens.length), w.slice(0, lens.length), 1, 2));
}

const params = (id: number | string, i: number, n: number): InferParameters => ({ sequence_id: id, sequence_start: i === 0, sequence_end: i === n - 1 });

describe("the cached transformer served over Triton's sequence batcher", () => {
  it("serves a request's steps as one sequence, equal to the same steps run in process", async () => {
    const steps = plan(1, [20, 15]);
    const want = await inProcess(steps);
    for (const [i, step] of steps.entries()) {
      expect(await served(step, params(11, i, steps.length))).toEqual(want[i]);
      if (i < steps.length - 1) expect(s.backend.activeSequences(MODEL)).toBe(1);
    }
    expect(s.backend.activeSequences(MODEL)).toBe(0); // END released it
  });

  it("never lets two interleaved sequences see each other's state", async () => {
    const a = plan(2, [18, 13]);
    const b = plan(3, [16, 16, 11]);
    const [wantA, wantB] = [await inProcess(a), await inProcess(b)];
    for (let i = 0; i < a.length; i++) {
      // the two requests' steps run concurrently, as the step batcher issues them
      const [gotA, gotB] = await Promise.all([served(a[i], params("request-a", i, a.length)), served(b[i], params("request-b", i, b.length))]);
      expect(gotA).toEqual(wantA[i]);
      expect(gotB).toEqual(wantB[i]);
      expect(s.backend.activeSequences(MODEL)).toBe(i < a.length - 1 ? 2 : 0);
    }
  });

  it("keeps a sequence's state when one of its steps fails", async () => {
    const steps = plan(4, [17, 12]);
    const want = await inProcess(steps);
    expect(await served(steps[0], params(44, 0, steps.length))).toEqual(want[0]);
    const bad = { ...steps[1], recompute: Array.from(steps[1].recompute, () => 999) }; // past L
    const e = (await errorOf(() => served(bad, params(44, 1, steps.length)))) as TritonError;
    expect(e.code).toBe(Status.INTERNAL);
    for (let i = 1; i < steps.length; i++) expect(await served(steps[i], params(44, i, steps.length))).toEqual(want[i]);
    expect(s.backend.activeSequences(MODEL)).toBe(0);
  });

  it("frees the state at END: the id needs START again", async () => {
    const steps = plan(5, [14, 10]);
    await served(steps[0], { sequence_id: 55, sequence_start: true, sequence_end: true });
    expect(s.backend.activeSequences(MODEL)).toBe(0);
    const e = (await errorOf(() => served(steps[1], { sequence_id: 55 }))) as TritonError;
    expect([e.code, e.message]).toEqual([Status.INVALID_ARGUMENT, `inference request for sequence 55 to model '${MODEL}' must specify the START flag on the first request of the sequence`]);
  });

  it("frees the state of a sequence left idle past max_sequence_idle_microseconds", async () => {
    const steps = plan(6, [14, 10]);
    await served(steps[0], { sequence_id: 66, sequence_start: true });
    await served(steps[1], { sequence_id: 66 });
    expect(s.backend.activeSequences(MODEL)).toBe(1);
    await new Promise((r) => setTimeout(r, IDLE_MS + 400));
    expect(s.backend.activeSequences(MODEL)).toBe(0);
    const e = (await errorOf(() => served(steps[2], { sequence_id: 66 }))) as TritonError;
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toMatch(/must specify the START flag/);
  });
});
