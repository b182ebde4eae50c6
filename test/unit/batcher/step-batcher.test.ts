import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { StepBatcher, type Submission } from "../../../gpu-backend/src/batcher/step-batcher";
import { OrchestratorError } from "../../../gpu-backend/src/errors";
import { fakeRunner, ToyTask } from "./fake-engine";

interface Run {
  positions: number[];
  steps: number[];
  batchSizes: number[];
  done: Promise<ToyTask>;
  error?: OrchestratorError;
}

function submit(s: StepBatcher, make: () => ToyTask, extra: Partial<Submission<ToyTask>> = {}, id = "r"): Run {
  const run = { positions: [], steps: [], batchSizes: [] } as unknown as Run;
  let resolve!: (t: ToyTask) => void;
  let reject!: (e: unknown) => void;
  run.done = new Promise<ToyTask>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  s.submit({
    requestId: id,
    deadlineAt: Infinity,
    prepare: make,
    onAccepted: (p) => run.positions.push(p),
    onStep: (_t, info) => {
      run.steps.push(info.step);
      run.batchSizes.push(info.batchSize);
    },
    onDone: resolve,
    onError: (e) => {
      run.error = e;
      reject(e);
    },
    ...extra,
  });
  run.done.catch(() => {});
  return run;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("StepBatcher", () => {
  it("runs a request step by step to completion", async () => {
    const runner = fakeRunner();
    const s = new StepBatcher({ runner });
    const r = submit(s, () => new ToyTask(1, 20, 10, 4));
    const task = await r.done;
    expect(r.positions).toEqual([0]);
    expect(r.steps).toEqual([1, 2, 3, 4, 5]);
    expect(task.isDone()).toBe(true);
    expect(runner.calls.length).toBe(5);
    expect(s.activeCount).toBe(0);
  });

  it("batches requests of one bucket into one call, with results identical to running alone", async () => {
    const alone: number[][][] = [];
    for (const seed of [1, 2, 3]) {
      const s = new StepBatcher({ runner: fakeRunner() });
      alone.push((await submit(s, () => new ToyTask(seed, 30 + seed, 12 + seed, 5)).done).history);
    }
    const runner = fakeRunner(5);
    const s = new StepBatcher({ runner });
    const runs = [1, 2, 3].map((seed) => submit(s, () => new ToyTask(seed, 30 + seed, 12 + seed, 5)));
    const tasks = await Promise.all(runs.map((r) => r.done));
    tasks.forEach((t, i) => expect(t.history).toEqual(alone[i]));
    expect(Math.max(...runs.flatMap((r) => r.batchSizes))).toBe(3);
    expect(runner.calls.some((c) => c.members.length === 3)).toBe(true);
  });

  it("never mixes sequence-length buckets in one call and takes turns between them", async () => {
    const runner = fakeRunner(2);
    const s = new StepBatcher({ runner, buckets: [64, 256] });
    const small = submit(s, () => new ToyTask(1, 20, 5, 2));
    const big = submit(s, () => new ToyTask(2, 150, 5, 15));
    await Promise.all([small.done, big.done]);
    for (const c of runner.calls) expect(c.members.length).toBe(1);
    expect(new Set(runner.calls.map((c) => c.length))).toEqual(new Set([64, 256]));
    // turns alternate while both run
    expect(runner.calls.slice(0, 6).map((c) => c.length)).toEqual([64, 256, 64, 256, 64, 256]);
  });

  it("mixes image and text requests of one bucket in one call", async () => {
    const runner = fakeRunner(2);
    const s = new StepBatcher({ runner });
    const a = submit(s, () => new ToyTask(1, 20, 10, 5, "image"));
    const b = submit(s, () => new ToyTask(2, 20, 10, 5, "text", 1));
    await Promise.all([a.done, b.done]);
    expect(runner.calls.some((c) => c.image.count === 1 && c.text.count === 1)).toBe(true);
  });

  it("starts a new request's first step at the next step boundary while others are mid-generation", async () => {
    const runner = fakeRunner(15);
    const s = new StepBatcher({ runner, buckets: [64, 256, 1024] });
    const long = submit(s, () => new ToyTask(1, 300, 5, 10)); // bucket 1024, 30 steps
    while (long.steps.length < 5) await sleep(5);
    const callsBefore = runner.calls.length;
    const t0 = Date.now();
    let firstStepAt = 0;
    const late = submit(s, () => new ToyTask(2, 20, 5, 5), {
      onStep: (_t, info) => {
        if (info.step === 1) firstStepAt = Date.now();
      },
    });
    await late.done;
    expect(late.positions).toEqual([0]);
    // its first step ran in the call right after the one in flight (different bucket: no waiting for "long")
    const idx = runner.calls.findIndex((c, i) => i >= callsBefore && c.length === 64);
    expect(idx - callsBefore).toBeLessThanOrEqual(1);
    expect(firstStepAt - t0).toBeLessThan(2 * 15 + 40);
    expect(long.steps.length).toBeLessThan(30);
    await long.done;
  });

  it("refuses with RESOURCE_EXHAUSTED and a retry hint when the queue is full", async () => {
    const s = new StepBatcher({ runner: fakeRunner(5), maxActive: 1, maxQueue: 1 });
    const a = submit(s, () => new ToyTask(1, 40, 5, 4));
    const b = submit(s, () => new ToyTask(2, 40, 5, 4));
    expect(a.positions).toEqual([0]);
    expect(b.positions).toEqual([1]);
    let err: unknown;
    try {
      submit(s, () => new ToyTask(3, 40, 5, 4));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OrchestratorError);
    expect((err as OrchestratorError).code).toBe(Code.ResourceExhausted);
    expect((err as OrchestratorError).retryAfterMs).toBeGreaterThan(0);
    await Promise.all([a.done, b.done]);
  });

  it("cancellation stops a running request at the next step boundary and frees its slot", async () => {
    const runner = fakeRunner(10);
    const s = new StepBatcher({ runner, maxActive: 1, maxQueue: 4 });
    const ac = new AbortController();
    const a = submit(s, () => new ToyTask(1, 400, 5, 4), { signal: ac.signal }, "a");
    const b = submit(s, () => new ToyTask(2, 20, 5, 4), {}, "b");
    expect(b.positions).toEqual([1]);
    while (a.steps.length < 3) await sleep(2);
    ac.abort();
    await expect(a.done).rejects.toMatchObject({ code: Code.Canceled });
    expect(a.steps.length).toBeLessThan(10);
    await b.done;
    expect(s.activeCount).toBe(0);
    expect(s.queueDepth).toBe(0);
  });

  it("cancelling a queued request removes it at once", async () => {
    const s = new StepBatcher({ runner: fakeRunner(5), maxActive: 1 });
    const a = submit(s, () => new ToyTask(1, 40, 5, 4));
    const ac = new AbortController();
    const b = submit(s, () => new ToyTask(2, 40, 5, 4), { signal: ac.signal });
    expect(s.queueDepth).toBe(1);
    ac.abort();
    await expect(b.done).rejects.toMatchObject({ code: Code.Canceled });
    expect(s.queueDepth).toBe(0);
    await a.done;
  });

  it("fails requests past their deadline, running or queued", async () => {
    const s = new StepBatcher({ runner: fakeRunner(10), maxActive: 1 });
    const a = submit(s, () => new ToyTask(1, 400, 5, 4), { deadlineAt: Date.now() + 60 });
    const b = submit(s, () => new ToyTask(2, 400, 5, 4), { deadlineAt: Date.now() + 30 });
    await expect(b.done).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await expect(a.done).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(a.steps.length).toBeGreaterThan(0);
    expect(a.steps.length).toBeLessThan(20);
    expect(() => submit(s, () => new ToyTask(3, 4, 5, 4), { deadlineAt: Date.now() - 1 })).toThrow(/deadline/);
  });

  it("fails every request of a call with the engine's code, and keeps serving", async () => {
    const runner = fakeRunner(1);
    runner.fail = Object.assign(new Error("connect ECONNREFUSED"), { code: Code.Unavailable });
    const s = new StepBatcher({ runner });
    const a = submit(s, () => new ToyTask(1, 20, 5, 4));
    const b = submit(s, () => new ToyTask(2, 20, 5, 4));
    await expect(a.done).rejects.toMatchObject({ code: Code.Unavailable });
    await expect(b.done).rejects.toMatchObject({ code: Code.Unavailable });
    runner.fail = undefined;
    await submit(s, () => new ToyTask(3, 20, 5, 4)).done;
  });

  it("passes preparation errors through and frees the queue entry", async () => {
    const s = new StepBatcher({ runner: fakeRunner() });
    const a = submit(s, () => {
      throw new OrchestratorError(Code.InvalidArgument, "images[0]: not an image", "images[0]");
    });
    await expect(a.done).rejects.toMatchObject({ code: Code.InvalidArgument, field: "images[0]" });
    expect(s.queueDepth).toBe(0);
  });

  it("respects the row limit per call", async () => {
    const runner = fakeRunner(2);
    const s = new StepBatcher({ runner, maxBatchRows: 4 });
    const runs = [1, 2, 3, 4, 5].map((seed) => submit(s, () => new ToyTask(seed, 12, 5, 4)));
    await Promise.all(runs.map((r) => r.done));
    for (const c of runner.calls) expect(c.rows).toBeLessThanOrEqual(4);
  });
});
