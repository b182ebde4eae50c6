// The dynamic batcher: same-shaped requests merged up to max_batch_size within max_queue_delay, preferred
// batch sizes, shapes that do not match stay apart; visible in ModelStatistics (execution count, batch stats).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelStatistics } from "../../../gpu-backend/src/triton/client";
import { affineModel, slowModel, startServer, vqLikeModel, type TestServer } from "./support";

let s: TestServer;

beforeAll(async () => {
  s = await startServer({
    // 300 ms window: concurrent requests land in one batch.
    batched: affineModel("batched", "dynamic_batching { max_queue_delay_microseconds: 300000 }"),
    plain: affineModel("plain", null),
    // Preferred size 4 with a long window: 4 requests must go at once without waiting the window out.
    preferred: { config: slowModel(1, "dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 3000000 }").config.replace('name: "slow"', 'name: "preferred"') },
    vq_like: vqLikeModel(),
  });
});

afterAll(async () => {
  await s?.stop();
});

async function stats(model: string): Promise<ModelStatistics> {
  return (await s.client.modelStatistics(model))[0];
}

function rows(k: number, n: number): Float32Array {
  return Float32Array.from({ length: 4 * n }, (_, i) => k * 1000 + i);
}

async function fire(model: string, sizes: number[]) {
  return Promise.all(
    sizes.map((n, k) => {
      const x = rows(k, n);
      return s.client.infer(model, { inputs: { x: { datatype: "FP32", shape: [n, 4], data: x } }, requestId: `${model}-${k}` }).then((r) => ({ k, x, r }));
    }),
  );
}

function checkRows(results: Awaited<ReturnType<typeof fire>>): void {
  for (const { k, x, r } of results) {
    expect(r.id).toMatch(new RegExp(`-${k}$`));
    const y = r.tensor("y", "FP32");
    expect(y.shape).toEqual([x.length / 4, 4]);
    expect(Array.from(y.data)).toEqual(Array.from(x, (v) => v * 2 + 1));
    const sums = r.tensor("rowsum", "FP32");
    expect(sums.shape).toEqual([x.length / 4, 1]);
    for (let row = 0; row < x.length / 4; row++) expect(sums.data[row]).toBe(x[row * 4] + x[row * 4 + 1] + x[row * 4 + 2] + x[row * 4 + 3]);
  }
}

describe("dynamic batcher", () => {
  it("merges concurrent requests into one execution and gives each request its own rows back", async () => {
    const before = await stats("batched");
    const results = await fire("batched", [1, 1, 1, 1, 1, 1, 1, 1]);
    checkRows(results);
    const after = await stats("batched");
    expect(after.inferenceCount - before.inferenceCount).toBe(8);
    const executions = after.executionCount - before.executionCount;
    expect(executions).toBeLessThanOrEqual(2);
    const merged = after.batchStats.filter((b) => b.batchSize > 1).reduce((a, b) => a + b.computeInfer.count, 0);
    expect(merged).toBeGreaterThanOrEqual(1);
    expect(after.inferenceStats.success.count - before.inferenceStats.success.count).toBe(8);
  });

  it("without dynamic batching every request executes alone", async () => {
    const before = await stats("plain");
    checkRows(await fire("plain", [1, 1, 1, 1, 1, 1]));
    const after = await stats("plain");
    expect(after.executionCount - before.executionCount).toBe(6);
    expect(after.batchStats.map((b) => b.batchSize)).toEqual([1]);
  });

  it("fills batches up to max_batch_size from requests of different batch sizes", async () => {
    const before = await stats("batched");
    const results = await fire("batched", [3, 3, 2, 5]);
    checkRows(results);
    const after = await stats("batched");
    expect(after.inferenceCount - before.inferenceCount).toBe(13);
    // 3+3+2 = 8 = max_batch_size goes at once; the 5 cannot join it.
    expect(after.executionCount - before.executionCount).toBe(2);
    const count8 = (st: ModelStatistics) => st.batchStats.find((b) => b.batchSize === 8)?.computeInfer.count ?? 0;
    expect(count8(after) - count8(before)).toBe(1);
  });

  it("holds a lone request for max_queue_delay, then runs it", async () => {
    const t0 = Date.now();
    checkRows(await fire("batched", [2]));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it("sends a preferred batch size at once instead of waiting out the queue delay", async () => {
    const before = await stats("preferred");
    const t0 = Date.now();
    await Promise.all(
      [0, 1, 2, 3].map((k) => s.client.infer("preferred", { inputs: { INPUT0: { datatype: "FP32", shape: [1, 2], data: [k, k] } } })),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    const after = await stats("preferred");
    expect(after.executionCount - before.executionCount).toBe(1);
    expect(after.batchStats.find((b) => b.batchSize === 4)?.computeInfer.count).toBe(1);
  });

  it("keeps requests with different shapes in different batches", async () => {
    const before = (await s.client.modelStatistics("vq_like", 1))[0];
    const px = (h: number, w: number, v: number) => ({ pixels: { datatype: "UINT8" as const, shape: [1, 3, h, w], data: new Uint8Array(3 * h * w).fill(v) } });
    const [a, b, c] = await Promise.all([
      s.client.infer("vq_like", { inputs: px(2, 2, 3), version: 1 }),
      s.client.infer("vq_like", { inputs: px(4, 4, 6), version: 1 }),
      s.client.infer("vq_like", { inputs: px(2, 2, 9), version: 1 }),
    ]);
    expect(Array.from(a.tensor("codes", "INT64").data)).toEqual([3n, 3n, 3n, 3n]);
    expect(b.tensor("codes", "INT64").shape).toEqual([1, 4, 4]);
    expect(b.tensor("codes", "INT64").data[15]).toBe(6n);
    expect(Array.from(c.tensor("codes", "INT64").data)).toEqual([9n, 9n, 9n, 9n]);
    const after = (await s.client.modelStatistics("vq_like", 1))[0];
    expect(after.inferenceCount - before.inferenceCount).toBe(3);
    expect(after.executionCount - before.executionCount).toBeGreaterThanOrEqual(2);
  });
});
