// The image worker pool on real threads: the same bytes as the inline jobs, errors that keep their field,
// admission under the memory budget (waits when full, never over it, refuses an image larger than all of it),
// and an event loop that stays responsive while a large image is decoded and resampled.
import { afterEach, describe, expect, it } from "vitest";
import sharp from "sharp";
import { inlineImageWork } from "../../../gpu-backend/src/image-work/image-work";
import { ImageWorkerPool, rgbBytes } from "../../../gpu-backend/src/image-work/worker-pool";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { gridForPixels } from "../../../gpu-backend/src/model/layout";

const pools: ImageWorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
function pool(opts: ConstructorParameters<typeof ImageWorkerPool>[0]): ImageWorkerPool {
  const p = new ImageWorkerPool(opts);
  pools.push(p);
  return p;
}

async function png(width: number, height: number, seed: number): Promise<Uint8Array> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 7 + (i >> 9)) & 255;
  return sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

const MAX = 4096 * 4096;

describe("ImageWorkerPool", () => {
  it("gives byte-identical results to the inline jobs", async () => {
    const p = pool({ threads: 2 });
    const bytes = await png(300, 200, 1);
    for (const prep of ["crop512", "crop1024", "floor16"] as const) {
      const a = await p.prepare(bytes, { field: "images[0]", maxPixels: MAX, prep, keepOriginal: true });
      const b = await inlineImageWork.prepare(bytes, { field: "images[0]", maxPixels: MAX, prep, keepOriginal: true });
      expect([a.image.width, a.image.height]).toEqual([b.image.width, b.image.height]);
      expect(Buffer.compare(Buffer.from(a.image.data), Buffer.from(b.image.data))).toBe(0);
      expect(Buffer.compare(Buffer.from(a.original!.data), Buffer.from(b.original!.data))).toBe(0);
    }
    const maskPng = await sharp(Buffer.alloc(300 * 200 * 3, 255), { raw: { width: 300, height: 200, channels: 3 } }).png().toBuffer();
    const grid = gridForPixels(192, 288);
    const m = await p.mask(maskPng, { field: "mask", width: 300, height: 200, maxPixels: MAX, grid });
    expect(m.cells).toEqual((await inlineImageWork.mask(maskPng, { field: "mask", width: 300, height: 200, maxPixels: MAX, grid })).cells);
  });

  it("reports bad input as InvalidArgument naming the field", async () => {
    const p = pool({ threads: 1 });
    const err = await p.prepare(new Uint8Array([1, 2, 3, 4]), { field: "images[1]", maxPixels: MAX, prep: "crop512" }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as InvalidArgument).field).toBe("images[1]");
  });

  it("refuses an image larger than the whole budget, naming it, without decoding it", async () => {
    const p = pool({ threads: 1, budgetBytes: rgbBytes(100, 100) });
    const err = await p.prepare(await png(120, 100, 2), { field: "images[0]", maxPixels: MAX, prep: "crop512" }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as InvalidArgument).field).toBe("images[0]");
    expect((err as Error).message).toMatch(/budget/);
    expect(p.budget.peakBytes).toBe(0);
  });

  it("holds decoded bytes in flight within the budget: jobs wait, none is lost", async () => {
    const each = rgbBytes(400, 300);
    const p = pool({ threads: 3, budgetBytes: 2 * each });
    const bytes = await png(400, 300, 3);
    let maxQueued = 0;
    const watch = setInterval(() => (maxQueued = Math.max(maxQueued, p.budget.queued)), 1);
    const results = await Promise.all(Array.from({ length: 6 }, () => p.prepare(bytes, { field: "images[0]", maxPixels: MAX, prep: "crop512" })));
    clearInterval(watch);
    expect(results).toHaveLength(6);
    expect(p.budget.peakBytes).toBeLessThanOrEqual(2 * each);
    expect(p.budget.peakBytes).toBe(2 * each);
    expect(maxQueued).toBeGreaterThan(0);
    expect(p.budget.inFlightBytes).toBe(0);
  });

  it("keeps the event loop responsive while a large image is decoded and resampled", async () => {
    const p = pool({ threads: 1 });
    const big = await png(4000, 3000, 4);
    // Warm the thread (tsx load), so the measurement is the job alone.
    await p.prepare(await png(32, 32, 5), { field: "images[0]", maxPixels: MAX, prep: "crop512" });
    let worstGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    const r = await p.prepare(big, { field: "images[0]", maxPixels: MAX, prep: "floor16" });
    const jobMs = performance.now() - t0;
    clearInterval(ticker);
    expect([r.image.width, r.image.height]).toEqual([4000, 2992]);
    // The same work inline blocks for most of jobMs; here the loop never stalls for more than a fraction of it.
    expect(worstGap).toBeLessThan(Math.max(250, jobMs / 3));
  });
});
