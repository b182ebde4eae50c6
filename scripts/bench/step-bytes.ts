// The bytes one guided 1024x1024 text-to-image step puts on the wire per request, request plus response, as
// the Triton client carries them (tensor data; protobuf framing adds a few hundred bytes): the real sampler's
// inputs (a 100-id prompt, the 30-id unconditional prompt, 64x64 cells, guidance 4), the real packers at the
// step batcher's lengths, the real Triton adapter, and the dev models served by the embedded backend. The
// steps measured are the worst: the first, with all 4096 cells masked, and on the cached model a refresh and
// a cached step that also ask for the next recompute set. Shared by the wire section of `npm run bench` and
// test/integration/triton/wire-bytes.test.ts, which holds each step to the 128 KB budget.
import { bucketFor } from "../../gpu-backend/src/batcher/buckets";
import { endingCall, packCachedStep, unpackCachedStep } from "../../gpu-backend/src/engine/cached-call";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL } from "../../gpu-backend/src/engine/contract";
import { longestRow, packStep, unpackStep } from "../../gpu-backend/src/engine/packer";
import type { StepInputs } from "../../gpu-backend/src/engine/step";
import { TritonEngine } from "../../gpu-backend/src/engine/triton-engine";
import { imageDenoisingInputs } from "../../gpu-backend/src/sampling/image-denoising";
import { advanceMlCache, initMlCache, recomputeAt } from "../../gpu-backend/src/sampling/ml-cache";
import { initTextToImage } from "../../gpu-backend/src/sampling/text-to-image";
import { TritonClient } from "../../gpu-backend/src/triton";
import type { InferRequest } from "../../gpu-backend/src/triton/client";

export const WIRE_BUDGET_BYTES = 128_000;

export interface StepBytes {
  sent: number;
  received: number;
}

export interface WorstStepBytes {
  /** Stateless model, step 0 (every cell a target), at the batcher's bucket length. */
  uncached: StepBytes & { length: number; tokens: number };
  /** Stateful model: the refresh step that starts the sequence and asks for the next recompute set. */
  refresh: StepBytes & { length: number };
  /** Stateful model: the cached step after it, which asks for the next set too. */
  cached: StepBytes & { recomputeLength: number; minSetOk: boolean };
}

const bytesOf = (tensors: Iterable<unknown>) => Array.from(tensors, (t) => (t as { data: ArrayBufferView }).data.byteLength).reduce((a, b) => a + b, 0);

/** A Triton engine on `tritonUrl` whose client records the tensor bytes of the latest call per model. */
export function wireCountingEngine(tritonUrl: string): { engine: TritonEngine; wire: Map<string, StepBytes> } {
  const wire = new Map<string, StepBytes>();
  const client = new TritonClient(tritonUrl);
  const infer = client.infer.bind(client);
  client.infer = async (model: string, req: InferRequest) => {
    const res = await infer(model, req);
    wire.set(model, { sent: bytesOf(Object.values(req.inputs)), received: bytesOf(Object.values(res.outputs)) });
    return res;
  };
  return { engine: new TritonEngine(client), wire };
}

/** The first step of a guided 1024x1024 text-to-image request, as its sampler asks for it. */
export function firstStep1024(): StepInputs {
  const state = initTextToImage({
    prompt: Array.from({ length: 100 }, (_, i) => 1000 + 37 * i),
    uncondPrompt: Array.from({ length: 30 }, (_, i) => 2000 + 11 * i),
    grid: { h: 64, w: 64 },
    cfgScale: 4,
    timesteps: 64,
    temperature: 1,
    seed: 7n,
  });
  return imageDenoisingInputs(state);
}

/** Runs the three worst steps (the cached ones only when the engine serves the stateful model). */
export async function measureWorstStepBytes(engine: TritonEngine, wire: Map<string, StepBytes>): Promise<WorstStepBytes> {
  const signal = new AbortController().signal;
  const inputs = firstStep1024();
  const call = packStep([inputs], bucketFor(longestRow(inputs)));
  const [out] = unpackStep(call, await engine.runTransformer(call, { requestId: "wire-off", signal }));
  const uncached = { ...wire.get(TRANSFORMER_MODEL)!, length: call.length, tokens: out.tokens.length };
  if (!engine.cached && !(await engine.detectCachedModel())) throw new Error("the engine serves no stateful model");

  // warm-up 0: step 0 refreshes, step 1 is cached, so both ask for the next set (the most bytes a step moves)
  let run = initMlCache(64, { cacheRatio: 0.9, warmupRatio: 0, refreshInterval: 5 });
  const L = longestRow(inputs);
  const first = packCachedStep(inputs, { sequenceId: 901n, start: true, end: false, recompute: recomputeAt(run, 0), selectForRatio: 0.9 }, L);
  const out0 = unpackCachedStep(first, await engine.cached!.runCachedStep(first, { requestId: "wire-on-0", signal }));
  const refresh = { ...wire.get(TRANSFORMER_CACHED_MODEL)!, length: L };
  run = advanceMlCache(run, 0, out0.recomputeSelection);
  const sets = recomputeAt(run, 1)!;
  const next = packCachedStep(inputs, { sequenceId: 901n, start: false, end: false, recompute: sets, selectForRatio: 0.9 }, L);
  await engine.cached!.runCachedStep(next, { requestId: "wire-on-1", signal });
  const cached = {
    ...wire.get(TRANSFORMER_CACHED_MODEL)!,
    recomputeLength: next.recomputeLength,
    // at least 10 % of each branch's positions (exactly floor(0.1 (n - 1)) + 1 unless max logits tie)
    minSetOk: sets.every((s, k) => s.length >= Math.floor(0.1 * (first.seqLens[k] - 1)) + 1),
  };
  await engine.cached!.runCachedStep(endingCall(next), { requestId: "wire-on-end", signal });
  return { uncached, refresh, cached };
}
