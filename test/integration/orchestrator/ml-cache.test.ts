// The ML-Cache through the real stack: the orchestrator against the embedded backend serving the dev
// models, the stateful one included. Cache on and off both give valid images of the right size (text-to-image
// and image-to-image), the usage
// counts the reference's cached steps, and the engine's sequence state is freed on completion, on cancel
// and at the deadline. A repository without the stateful model serves the same request uncached.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { Code, ConnectError } from "@connectrpc/connect";
import { Task, type GenerateEvent } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { EmbeddedBackend } from "../../../gpu-backend/src/embedded/server";
import type { Orchestrator } from "../../../gpu-backend/src/service/orchestrator";
import { TRANSFORMER_CACHED_MODEL } from "../../../gpu-backend/src/engine/contract";
import { mlCacheRefreshSteps } from "../../../gpu-backend/src/sampling/ml-cache";
import { chooseCropSize, i2iCropSizes } from "../../../gpu-backend/src/model/crops";
import { auth, clientFor, collect, errorOf, startDevStack, TOKEN, waitFor, type DevStack } from "./support";

let stack: DevStack;
let backend: EmbeddedBackend;
let orch: Orchestrator;

beforeAll(async () => {
  stack = await startDevStack();
  ({ backend, orch } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const t2i = (seed: bigint, mlCache: boolean, steps = 16) => ({
  task: Task.TEXT_TO_IMAGE,
  prompt: "a lighthouse at dusk",
  width: 128,
  height: 96,
  steps,
  seed,
  mlCache: { enabled: mlCache },
});

function resultOf(events: GenerateEvent[]) {
  const last = events[events.length - 1];
  if (last.event.case !== "result") throw new Error(`no result: ${last.event.case}`);
  return last.event.value;
}

describe("ML-Cache through the orchestrator", () => {
  it("is announced in Capabilities when the repository serves the stateful model", async () => {
    const caps = await clientFor("connect", orch.url).capabilities({}, { headers: auth(TOKEN) });
    expect(caps.mlCache).toBe(true);
  });

  it("gives a valid image of the right size with the cache on and off, counting the cached steps", async () => {
    const client = clientFor("grpc", orch.url);
    const [off, on] = await Promise.all([
      collect(client.generate(t2i(3n, false), { headers: auth(TOKEN) })),
      collect(client.generate(t2i(3n, true), { headers: auth(TOKEN) })),
    ]);
    const cachedSteps = mlCacheRefreshSteps(16).filter((r) => !r).length;
    expect(cachedSteps).toBeGreaterThan(0);
    for (const [events, cached] of [[off, 0], [on, cachedSteps]] as const) {
      const r = resultOf(events);
      const meta = await sharp(r.image).metadata();
      expect([meta.width, meta.height]).toEqual([128, 96]);
      expect(r.usage?.steps).toBe(16);
      expect(r.usage?.cachedSteps).toBe(cached);
    }
    // Cached steps recompute a tenth of the positions: the transformer saw fewer tokens.
    expect(Number(resultOf(on).usage?.tokensProcessed)).toBeLessThan(Number(resultOf(off).usage?.tokensProcessed));
    expect(backend.activeSequences(TRANSFORMER_CACHED_MODEL)).toBe(0);
  });

  it("runs image-to-image (three branches, the input image in every row) with the cache: the crop size, the cached steps, fewer tokens", async () => {
    const input = await sharp({ create: { width: 300, height: 200, channels: 3, background: "#3a7" } })
      .composite([{ input: Buffer.from('<svg width="300" height="200"><circle cx="150" cy="100" r="60" fill="#c33"/></svg>') }])
      .png()
      .toBuffer();
    const edit = (mlCache: boolean) => ({ task: Task.EDIT, editType: "edit_replace", prompt: "replace the disc with an apple", images: [input], steps: 8, seed: 9n, mlCache: { enabled: mlCache } });
    // The stateful model must have been found (start-up looks once, within a 2 s limit a loaded machine can miss).
    if (!orch.engine.cached) await orch.engine.detectCachedModel();
    expect(orch.engine.cached).toBeDefined();
    const client = clientFor("grpc", orch.url);
    const before = orch.stats.batchRows.sum();
    const [off, on] = await Promise.all([collect(client.generate(edit(false), { headers: auth(TOKEN) })), collect(client.generate(edit(true), { headers: auth(TOKEN) }))]);
    const size = chooseCropSize(300, 200, i2iCropSizes());
    for (const [events, cached] of [[off, 0], [on, mlCacheRefreshSteps(8).filter((r) => !r).length]] as const) {
      const r = resultOf(events);
      expect([r.width, r.height]).toEqual([...size]);
      const meta = await sharp(r.image).metadata();
      expect([meta.width, meta.height]).toEqual([...size]);
      expect(r.usage?.cachedSteps).toBe(cached);
    }
    // Both ran the three branches on every step; the cached one recomputed a tenth of them on cached steps.
    expect(orch.stats.batchRows.sum() - before).toBe(2 * 8 * 3);
    expect(Number(resultOf(on).usage?.tokensProcessed)).toBeLessThan(Number(resultOf(off).usage?.tokensProcessed));
    expect(backend.activeSequences(TRANSFORMER_CACHED_MODEL)).toBe(0);
  }, 300_000);

  it("is deterministic: the same cached request twice gives the same bytes", async () => {
    const client = clientFor("connect", orch.url);
    const a = resultOf(await collect(client.generate(t2i(11n, true, 12), { headers: auth(TOKEN) })));
    const b = resultOf(await collect(client.generate(t2i(11n, true, 12), { headers: auth(TOKEN) })));
    expect(Buffer.from(a.image).equals(Buffer.from(b.image))).toBe(true);
  });

  it("frees the sequence's state when the caller goes away mid-generation", async () => {
    const client = clientFor("grpc", orch.url);
    const abort = new AbortController();
    const err = errorOf(async () => {
      for await (const ev of client.generate(t2i(5n, true, 64), { headers: auth(TOKEN), signal: abort.signal })) {
        if (ev.event.case === "progress" && ev.event.value.step === 3) abort.abort();
      }
    });
    expect(ConnectError.from(await err).code).toBe(Code.Canceled);
    await waitFor(() => orch.batcher.activeCount === 0 && backend.activeSequences(TRANSFORMER_CACHED_MODEL) === 0, 20_000);
  });

  it("frees the sequence's state at the request's deadline", async () => {
    const client = clientFor("connect", orch.url);
    const err = await errorOf(() => collect(client.generate({ ...t2i(6n, true, 200), deadlineMs: 400 }, { headers: auth(TOKEN) })));
    expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
    await waitFor(() => orch.batcher.activeCount === 0 && backend.activeSequences(TRANSFORMER_CACHED_MODEL) === 0, 20_000);
  });

  it("serves the request uncached where the engine has no stateful model", async () => {
    const client = clientFor("connect", orch.url);
    orch.engine.cached = undefined; // as after start-up against a repository without it
    try {
      expect((await client.capabilities({}, { headers: auth(TOKEN) })).mlCache).toBe(false);
      const r = resultOf(await collect(client.generate(t2i(4n, true, 8), { headers: auth(TOKEN) })));
      expect(r.usage?.cachedSteps).toBe(0);
      expect((await sharp(r.image).metadata()).width).toBe(128);
    } finally {
      await orch.engine.detectCachedModel();
    }
    expect(orch.engine.cached).toBeDefined();
  });

  it("names the offending cache field", async () => {
    const client = clientFor("connect", orch.url);
    const err = await errorOf(() => collect(client.generate({ ...t2i(1n, true), mlCache: { enabled: true, cacheRatio: 1.5 } }, { headers: auth(TOKEN) })));
    expect(ConnectError.from(err).code).toBe(Code.InvalidArgument);
    expect(ConnectError.from(err).message).toContain("ml_cache.cache_ratio");
    // 2048x1024 fits the stateless model's profiles but not the cached model's 5,120-token rows.
    const long = await errorOf(() => collect(client.generate({ ...t2i(1n, true), width: 2048, height: 1024 }, { headers: auth(TOKEN) })));
    expect(ConnectError.from(long).code).toBe(Code.InvalidArgument);
    expect(ConnectError.from(long).message).toMatch(/^.*ml_cache: 2048x1024 needs \d+ tokens per row, more than the 5120/);
  });
});
