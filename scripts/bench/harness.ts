// The orchestrator's step loop as the scheduling sections run it: the real text-to-image pipeline
// (tokenizer, layout, sampler, counter-based RNG, remasking) and the real StepBatcher, in this process,
// over any TransformerRunner (the simulated engine). `policy: "fifo"` is the baseline of the reference
// scripts: one request at a time, every step of it, in arrival order (the same batcher with one slot).
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { GenerateRequestSchema, Task } from "../../proto/gen/dimoo/v1/dimoo_pb";
import { StepBatcher, type TickStats } from "../../gpu-backend/src/batcher/step-batcher";
import { DEV_MODEL_REPOSITORY, ensureDevModels } from "../../gpu-backend/src/cli/build-dev-models";
import { TRANSFORMER_MODEL } from "../../gpu-backend/src/engine/contract";
import type { TransformerRunner, VqRunner } from "../../gpu-backend/src/engine/runners";
import { Tokenizer } from "../../gpu-backend/src/model/tokenizer";
import { createGeneratePipeline } from "../../gpu-backend/src/tasks/generate";
import { DEFAULT_LIMITS } from "../../gpu-backend/src/tasks/limits";
import type { GeneratePipeline } from "../../gpu-backend/src/tasks/task";
import type { ImageSpec } from "../../gpu-backend/src/tasks/image-family";
import type { DenoisingTask } from "../../gpu-backend/src/tasks/denoising-task";

export type Policy = "step-batching" | "fifo";

/** Text-to-image needs no VQ until finish(), which these sections do not run. */
const noVq: VqRunner = {
  encode: async () => {
    throw new Error("the benchmark does not VQ-encode");
  },
  decode: async () => {
    throw new Error("the benchmark does not VQ-decode");
  },
};

let pipeline: Promise<GeneratePipeline<ImageSpec, DenoisingTask>> | undefined;

/** The text-to-image pipeline with the dev tokenizer (the real DiMOO vocabulary). */
export function imagePipeline(): Promise<GeneratePipeline<ImageSpec, DenoisingTask>> {
  pipeline ??= (async () => {
    await ensureDevModels({ log: () => {} });
    const tokenizer = await Tokenizer.fromFile(join(DEV_MODEL_REPOSITORY, TRANSFORMER_MODEL, "tokenizer.json"));
    return createGeneratePipeline({ tokenizer, vq: noVq, limits: DEFAULT_LIMITS });
  })();
  return pipeline;
}

export interface RequestTiming {
  /** ms from submission to the end of its first step (its first progress event), and to its last. */
  firstStepMs: number;
  doneMs: number;
}

export interface BatcherRun {
  batcher: StepBatcher;
  ticks: TickStats[];
  /** Submits one text-to-image request; resolves with its timing when it finishes. */
  submit(i: number, opts?: { size?: number; steps?: number; tenant?: string; onStep?: (step: number) => void }): Promise<RequestTiming>;
}

export interface BatcherRunOptions {
  runner: TransformerRunner;
  policy: Policy;
  size: number;
  steps: number;
  /** Slots for step batching (default 16). */
  slots?: number;
  /** Slots one named tenant may hold (default: all of them). */
  slotsPerTenant?: number;
}

export async function batcherRun(o: BatcherRunOptions): Promise<BatcherRun> {
  const pipe = await imagePipeline();
  const ticks: TickStats[] = [];
  const slots = o.policy === "fifo" ? 1 : (o.slots ?? 16);
  const batcher = new StepBatcher({
    runner: o.runner,
    maxActive: slots,
    maxActivePerTenant: o.slotsPerTenant ?? slots,
    maxQueue: 1024,
    maxQueuePerTenant: 1024,
    onTick: (t) => ticks.push(t),
  });
  const submit: BatcherRun["submit"] = async (i, opt = {}) => {
    const size = opt.size ?? o.size;
    const spec = await pipe.validate(
      create(GenerateRequestSchema, {
        task: Task.TEXT_TO_IMAGE,
        prompt: `a photograph of an astronaut riding a horse on the moon, number ${i}`,
        width: size,
        height: size,
        steps: opt.steps ?? o.steps,
        seed: BigInt(1000 + i),
        requestId: `bench-${i}`,
      }),
    );
    const t0 = performance.now();
    let first = NaN;
    return new Promise<RequestTiming>((resolve, reject) =>
      batcher.submit({
        requestId: spec.requestId,
        tenant: opt.tenant,
        deadlineAt: Infinity,
        prepare: (signal) => pipe.prepare(spec, { requestId: spec.requestId, signal }),
        onStep: (_task, info) => {
          if (info.step === 1) first = performance.now() - t0;
          opt.onStep?.(info.step);
        },
        onDone: () => resolve({ firstStepMs: first, doneMs: performance.now() - t0 }),
        onError: reject,
      }),
    );
  };
  return { batcher, ticks, submit };
}
