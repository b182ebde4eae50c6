// Requests with the ML-Cache on, through the step batcher against a fake stateful engine: one engine
// sequence per request, the reference's refresh and cached step counts, recompute sets chosen per branch,
// cached requests run alone while uncached ones still batch, and sequences end however the request leaves.
import { describe, expect, it } from "vitest";
import { StepBatcher } from "../../../gpu-backend/src/batcher/step-batcher";
import type { OrchestratorError } from "../../../gpu-backend/src/errors";
import { initMlCache, ML_CACHE_DEFAULTS, recomputePositions } from "../../../gpu-backend/src/sampling/ml-cache";
import { initTextToImage } from "../../../gpu-backend/src/sampling/text-to-image";
import { DenoisingTask } from "../../../gpu-backend/src/tasks/denoising-task";
import { P, PU } from "../sampling/helpers";
import { fakeCachedRunner } from "./fake-engine";

function task(seed: bigint, opts: { cached: boolean; steps?: number; sequenceId?: bigint }): DenoisingTask {
  const steps = opts.steps ?? 64;
  const state = initTextToImage({ prompt: P, uncondPrompt: PU, grid: { h: 8, w: 10 }, cfgScale: 4, timesteps: steps, temperature: 1, seed });
  const cache = opts.cached ? { sequenceId: opts.sequenceId ?? seed + 1000n, run: initMlCache(steps) } : undefined;
  return new DenoisingTask(state, P.length, cache);
}

function run(b: StepBatcher, make: () => DenoisingTask, signal?: AbortSignal, deadlineAt = Infinity) {
  return new Promise<DenoisingTask>((resolve, reject) =>
    b.submit({ requestId: "r", deadlineAt, signal, prepare: make, onDone: resolve, onError: (e: OrchestratorError) => reject(e) }),
  );
}

describe("cached requests in the step batcher", () => {
  it("run as one sequence: 28 refresh and 36 cached steps at T=64, recompute sets per branch", async () => {
    const runner = fakeCachedRunner();
    const b = new StepBatcher({ runner });
    const t = await run(b, () => task(1n, { cached: true }));
    const calls = runner.cachedCalls;
    expect(calls.length).toBe(64);
    expect(runner.calls.length).toBe(0);
    expect(calls.map((c) => c.start)).toEqual([true, ...Array(63).fill(false)]);
    expect(calls.map((c) => c.end)).toEqual([...Array(63).fill(false), true]);
    expect(new Set(calls.map((c) => c.sequenceId)).size).toBe(1);
    expect(runner.openSequences.size).toBe(0);
    const refresh = initMlCache(64).refresh;
    const L = calls[0].length;
    const lens = Array.from(calls[0].seqLens, Number);
    calls.forEach((c, s) => {
      if (refresh[s]) {
        expect(c.recomputeLength).toBe(L); // every position of the longest row
      } else {
        // Each branch's set comes from the previous step's max logits over that branch's own positions
        // (about a tenth of them), padded to the longest set by repeating a position.
        const prev = runner.maxLogits[s - 1];
        const want = lens.map((n, k) => recomputePositions(prev.subarray(k * L, k * L + n), 0.9));
        expect(c.recomputeLength).toBe(Math.max(...want.map((w) => w.length)));
        for (let k = 0; k < c.branches; k++) {
          expect(Math.abs(want[k].length - (Math.floor(0.1 * (lens[k] - 1)) + 1))).toBeLessThanOrEqual(1);
          const set = Array.from(c.recompute.subarray(k * c.recomputeLength, (k + 1) * c.recomputeLength), Number);
          expect([...new Set(set)].sort((a, b) => a - b)).toEqual(Array.from(want[k]));
        }
      }
    });
    expect(t.cachedSteps).toBe(36);
    expect(t.isDone()).toBe(true);
  });

  it("run alone while uncached requests still share calls", async () => {
    const runner = fakeCachedRunner(1);
    const b = new StepBatcher({ runner });
    const done = await Promise.all([
      run(b, () => task(1n, { cached: false, steps: 8 })),
      run(b, () => task(2n, { cached: false, steps: 8 })),
      run(b, () => task(3n, { cached: true, steps: 8 })),
    ]);
    expect(runner.cachedCalls.length).toBe(8);
    expect(runner.cachedCalls.every((c) => c.sequenceId === 1003n)).toBe(true);
    // The two uncached requests ran their 8 steps each in shared calls.
    expect(runner.calls.reduce((n, c) => n + c.members.length, 0)).toBe(16);
    expect(runner.calls.filter((c) => c.members.length === 2).length).toBeGreaterThanOrEqual(6);
    expect(done.map((t) => t.cachedSteps)).toEqual([0, 0, 8 - initMlCache(8).refresh.filter(Boolean).length]);
  });

  it("gives the cached and the uncached run of one request images of the same grid", async () => {
    const runner = fakeCachedRunner();
    const b = new StepBatcher({ runner });
    const [a, c] = await Promise.all([run(b, () => task(5n, { cached: false })), run(b, () => task(5n, { cached: true }))]);
    expect(a.codes().length).toBe(80);
    expect(c.codes().length).toBe(80);
    for (const v of c.codes()) expect(v >= 0 && v < 8192).toBe(true);
  });

  it("hold no more engine sequences at once than the stateful model has slots", async () => {
    const runner = fakeCachedRunner(1);
    const b = new StepBatcher({ runner, maxCachedActive: 1 });
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, runner.openSequences.size)), 1);
    const [first, second, plain] = [run(b, () => task(1n, { cached: true, steps: 8 })), run(b, () => task(2n, { cached: true, steps: 8 })), run(b, () => task(3n, { cached: false, steps: 8 }))];
    await Promise.all([first, second, plain]);
    clearInterval(watch);
    expect(most).toBe(1);
    // The second sequence started only after the first ended; the uncached request did not wait for either.
    const seqs = runner.cachedCalls.map((c) => c.sequenceId);
    expect(seqs.lastIndexOf(1001n)).toBeLessThan(seqs.indexOf(1002n));
    expect(runner.calls.length).toBe(8);
  });

  it("ends the sequence when the request is cancelled mid-way", async () => {
    const runner = fakeCachedRunner(2);
    const b = new StepBatcher({ runner });
    const caller = new AbortController();
    const p = run(b, () => task(7n, { cached: true }), caller.signal);
    while (runner.cachedCalls.length < 5) await new Promise((r) => setTimeout(r, 1));
    caller.abort();
    await expect(p).rejects.toMatchObject({ code: 1 });
    for (let i = 0; i < 100 && runner.openSequences.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(runner.openSequences.size).toBe(0);
    const last = runner.cachedCalls[runner.cachedCalls.length - 1];
    expect([last.end, last.recomputeLength]).toEqual([true, 1]);
  });

  it("ends the sequence when the request runs past its deadline", async () => {
    const runner = fakeCachedRunner(2);
    const b = new StepBatcher({ runner });
    await expect(run(b, () => task(8n, { cached: true }), undefined, Date.now() + 40)).rejects.toMatchObject({ code: 4 });
    for (let i = 0; i < 100 && runner.openSequences.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(runner.cachedCalls.length).toBeGreaterThan(1);
    expect(runner.openSequences.size).toBe(0);
  });

  it("fails a cached request cleanly when the engine has no stateful model", async () => {
    const runner = fakeCachedRunner();
    const b = new StepBatcher({ runner: { runTransformer: runner.runTransformer } });
    await expect(run(b, () => task(9n, { cached: true }))).rejects.toMatchObject({ code: 9 });
  });

  it("keeps the reference defaults", () => {
    expect(ML_CACHE_DEFAULTS).toEqual({ cacheRatio: 0.9, warmupRatio: 0.3, refreshInterval: 5 });
  });
});
