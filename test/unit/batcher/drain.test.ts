// The step batcher's graceful drain against fake engines: it refuses new work with the draining message,
// lets admitted requests (running and queued) finish within the grace period, fails what is left after it
// with UNAVAILABLE, and ends the engine sequences of cached requests before it resolves.
import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { DRAIN_CANCEL_MESSAGE, DRAINING_MESSAGE, StepBatcher, type StepTask } from "../../../gpu-backend/src/batcher/step-batcher";
import { OrchestratorError } from "../../../gpu-backend/src/errors";
import { initMlCache } from "../../../gpu-backend/src/sampling/ml-cache";
import { initTextToImage } from "../../../gpu-backend/src/sampling/text-to-image";
import { DenoisingTask } from "../../../gpu-backend/src/tasks/denoising-task";
import { P, PU } from "../sampling/helpers";
import { fakeCachedRunner, fakeRunner, ToyTask } from "./fake-engine";

interface Outcome<T> {
  done: Promise<T>;
  steps: number;
}

function submit<T extends StepTask>(b: StepBatcher, make: () => T, id: string): Outcome<T> {
  const out = { steps: 0 } as Outcome<T>;
  let resolve!: (t: T) => void;
  let reject!: (e: unknown) => void;
  out.done = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  out.done.catch(() => {});
  // Outside the promise, so a refusal throws to the caller as it does in the service.
  b.submit({ requestId: id, deadlineAt: Infinity, prepare: make, onStep: () => out.steps++, onDone: resolve, onError: reject });
  return out;
}

const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
};
const settle = <T>(p: Promise<T>) => p.then(() => "ok" as const, (e: OrchestratorError) => e);

describe("StepBatcher drain", () => {
  it("refuses new requests with UNAVAILABLE and the draining message, and reports itself draining", async () => {
    const b = new StepBatcher({ runner: fakeRunner() });
    expect(b.isDraining).toBe(false);
    const report = await b.drain(1000);
    expect(report).toMatchObject({ held: 0, cancelled: 0 });
    expect(b.isDraining).toBe(true);
    let err: unknown;
    try {
      submit(b, () => new ToyTask(1, 20, 10, 4), "late");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OrchestratorError);
    expect((err as OrchestratorError).code).toBe(Code.Unavailable);
    expect((err as OrchestratorError).message).toBe(DRAINING_MESSAGE);
  });

  it("lets running and queued requests finish within the grace period", async () => {
    const runner = fakeRunner(5);
    // One slot: the second and third requests wait in the queue when the drain begins.
    const b = new StepBatcher({ runner, maxActive: 1 });
    const runs = [1, 2, 3].map((seed) => submit(b, () => new ToyTask(seed, 20, 10, 4), `r${seed}`));
    await until(() => runs[0].steps > 0);
    expect(runs[2].steps).toBe(0);
    const report = await b.drain(10_000);
    expect(report).toMatchObject({ held: 3, cancelled: 0 });
    for (const r of runs) {
      const t = await r.done;
      expect(t.isDone()).toBe(true);
      expect(r.steps).toBe(5);
    }
    expect(b.activeCount + b.queueDepth).toBe(0);
  });

  it("fails what is left when the grace period ends, with UNAVAILABLE, and resolves once nothing is held", async () => {
    const runner = fakeRunner(20);
    const b = new StepBatcher({ runner, maxActive: 1 });
    // 50 steps of 20 ms: far longer than the 60 ms grace.
    const long = submit(b, () => new ToyTask(1, 200, 10, 4), "long");
    const queued = submit(b, () => new ToyTask(2, 20, 10, 4), "queued");
    await until(() => long.steps > 0);
    const t0 = Date.now();
    const report = await b.drain(60);
    const ms = Date.now() - t0;
    expect(report).toMatchObject({ held: 2, cancelled: 2 });
    expect(ms).toBeGreaterThanOrEqual(55);
    for (const r of [long, queued]) {
      const e = await settle(r.done);
      expect(e).toBeInstanceOf(OrchestratorError);
      expect((e as OrchestratorError).code).toBe(Code.Unavailable);
      expect((e as OrchestratorError).message).toBe(DRAIN_CANCEL_MESSAGE);
    }
    expect(long.steps).toBeGreaterThan(0);
    expect(long.steps).toBeLessThan(50);
    expect(b.activeCount).toBe(0);
  });

  it("ends the engine sequence of a cached request cut by the drain before it resolves", async () => {
    const runner = fakeCachedRunner(2);
    const b = new StepBatcher({ runner });
    const state = initTextToImage({ prompt: P, uncondPrompt: PU, grid: { h: 8, w: 10 }, cfgScale: 4, timesteps: 64, temperature: 1, seed: 7n });
    const cached = submit(b, () => new DenoisingTask(state, P.length, { sequenceId: 4242n, run: initMlCache(64) }), "cached");
    await until(() => cached.steps >= 3);
    expect(runner.openSequences.has(4242n)).toBe(true);
    const report = await b.drain(0);
    expect(report.cancelled).toBe(1);
    expect(((await settle(cached.done)) as OrchestratorError).code).toBe(Code.Unavailable);
    // The sequence end was answered before drain() resolved: the engine holds no state for it any more.
    expect(runner.openSequences.size).toBe(0);
    expect(runner.cachedCalls.at(-1)?.end).toBe(true);
  });
});
