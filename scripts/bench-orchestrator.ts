// Per-step orchestrator time (everything but the engine call) at the 1024x1024 text-to-image layout.
//
//   npx tsx scripts/bench-orchestrator.ts [--steps 64] [--batch 1,4] [--size 1024] [--triton host:port]
//
// Default mode: the real sampler (tokenizer, layout, guidance, counter-based RNG, remask), the real
// scheduler and packer, and a null engine that answers instantly with well-formed outputs, so the figure is
// the orchestrator's own CPU time per step: building the step inputs (rows, targets, uniforms), packing
// into contract tensors, unpacking, advancing (commit + remask of 4096 cells), progress callbacks.
// With --triton, the same run goes through the Triton client to a real server (the embedded backend with
// the dev models, or Triton); the engine time then also includes request encoding and the network.
import { join } from "node:path";
import { Tokenizer } from "../gpu-backend/src/model/tokenizer";
import { TRANSFORMER_MODEL } from "../gpu-backend/src/engine/contract";
import { CODEBOOK_SIZE } from "../gpu-backend/src/model/tokens";
import { StepBatcher, type TickStats } from "../gpu-backend/src/batcher/step-batcher";
import { createGeneratePipeline } from "../gpu-backend/src/tasks/generate";
import type { TransformerRunner, VqRunner } from "../gpu-backend/src/engine/runners";
import { TritonEngine } from "../gpu-backend/src/engine/triton-engine";
import { TritonClient } from "../gpu-backend/src/triton";
import { DEFAULT_LIMITS } from "../gpu-backend/src/tasks/limits";
import { create } from "@bufbuild/protobuf";
import { GenerateRequestSchema, Task } from "../proto/gen/dimoo/v1/dimoo_pb";
import { ensureDevModels, DEV_MODEL_REPOSITORY } from "../gpu-backend/src/cli/build-dev-models";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const steps = Number(arg("steps", "64"));
const batches = arg("batch", "1,4").split(",").map(Number);
const size = Number(arg("size", "1024"));
const tritonUrl = process.argv.includes("--triton") ? arg("triton", "127.0.0.1:8001") : undefined;

/** Answers instantly with valid tokens and confidences (a cheap LCG, outside the measured time). */
const nullEngine: TransformerRunner = {
  async runTransformer(call) {
    const gm = call.image.count * call.image.slots;
    const tn = call.text.count * call.text.slots;
    const imageTokens = new Int32Array(gm);
    const imageConfidence = new Float32Array(gm);
    let x = 12345;
    for (let i = 0; i < gm; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      imageTokens[i] = x % CODEBOOK_SIZE;
      imageConfidence[i] = (x >>> 8) / 16777216;
    }
    return { imageTokens, imageConfidence, textTokens: new Int32Array(tn), textProbability: new Float32Array(tn) };
  },
};
const noVq: VqRunner = {
  encode: async () => {
    throw new Error("unused");
  },
  decode: async () => {
    throw new Error("unused");
  },
};

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

async function main() {
  await ensureDevModels({ log: () => {} });
  const tokenizer = await Tokenizer.fromFile(join(DEV_MODEL_REPOSITORY, TRANSFORMER_MODEL, "tokenizer.json"));
  let client: TritonClient | undefined;
  let runner: TransformerRunner = nullEngine;
  if (tritonUrl) {
    client = new TritonClient(tritonUrl);
    runner = new TritonEngine(client, { transformerTimeoutMs: 600_000 });
  }
  const pipeline = createGeneratePipeline({ tokenizer, vq: noVq, limits: DEFAULT_LIMITS });
  console.log(`# ${size}x${size} text-to-image, ${steps} steps, guidance 4 (2 branches), engine: ${tritonUrl ? `Triton at ${tritonUrl}` : "null (instant)"}`);
  // The first pass warms up the JIT; it is not reported.
  for (const [pass, batch] of [[0, 1] as const, ...batches.map((b) => [1, b] as const)]) {
    const ticks: TickStats[] = [];
    const sched = new StepBatcher({ runner, maxActive: batch, maxQueue: batch, onTick: (t) => ticks.push(t) });
    const t0 = performance.now();
    let progressEvents = 0;
    await Promise.all(
      Array.from({ length: batch }, async (_, i) => {
        const req = create(GenerateRequestSchema, {
          task: Task.TEXT_TO_IMAGE,
          prompt: `a photograph of an astronaut riding a horse on the moon, number ${i}`,
          width: size,
          height: size,
          steps,
          seed: BigInt(1000 + i),
          requestId: `bench-${batch}-${i}`,
        });
        const spec = await pipeline.validate(req);
        await new Promise<void>((resolve, reject) =>
          sched.submit({
            requestId: spec.requestId,
            deadlineAt: Infinity,
            prepare: (signal) => pipeline.prepare(spec, { requestId: spec.requestId, signal }),
            onStep: () => void progressEvents++,
            onDone: () => resolve(),
            onError: reject,
          }),
        );
      }),
    );
    const wall = performance.now() - t0;
    if (pass === 0) continue;
    // The engine's profiles cap a call (4 rows at L=4608: two 2-branch requests), so report the calls
    // that ran with the most requests.
    const most = Math.max(...ticks.map((t) => t.batchSize));
    const full = ticks.filter((t) => t.batchSize === most);
    const orch = stats(full.map((t) => t.orchestratorMs));
    const eng = stats(full.map((t) => t.engineMs));
    console.log(
      `${batch} concurrent: ${ticks.length} calls, ${full.length} with ${most} request(s) (L=${full[0].length}, rows=${full[0].rows}): ` +
        `orchestrator per call mean ${orch.mean.toFixed(2)} ms (p50 ${orch.p50.toFixed(2)}, p95 ${orch.p95.toFixed(2)}, max ${orch.max.toFixed(2)}), ` +
        `per request-step ${(orch.mean / most).toFixed(2)} ms; engine per call mean ${eng.mean.toFixed(2)} ms; wall ${wall.toFixed(0)} ms, ${progressEvents} progress events`,
    );
  }
  client?.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
