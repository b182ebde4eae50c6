// Item 4: throughput and latency against concurrency (1, 2, 4, 8, 16 requests submitted at once) at
// 256x256, 512x512 and 1024x1024 (guidance 4), step-level batching against whole-job FIFO, side by side in
// one run on the simulated engine. At 1024x1024 one request nearly saturates the GPU (and a TensorRT call
// holds two), so batching should mostly cut latency spread; at 256x256 (256 image tokens per row) calls
// are far from saturation and batching across requests should raise throughput.
import { batcherRun, type Policy } from "./harness";
import { createSimulatedEngine } from "./simulated-engine";
import { isMain, runAlone, type BenchContext, type BenchSection } from "./section";
import { fmt, ratio, summarize, table, type Summary } from "./stats";

interface Point {
  size: number;
  concurrency: number;
  policy: Policy;
  wallMs: number;
  imagesPerSecond: number;
  latency: Summary;
  calls: number;
}

/** Simulated seconds of one request's step alone at `size` (one 1-step request on an instant engine). */
async function singleStepSeconds(size: number): Promise<number> {
  const engine = createSimulatedEngine({ scale: 0 });
  const run = await batcherRun({ runner: engine, policy: "fifo", size, steps: 1 });
  await run.submit(0);
  return engine.stats.busySeconds;
}

/**
 * Every size runs at the scale that gives its single-request step the wall time a 1024x1024 step has at
 * the suite's scale: small steps scaled by 0.1 would be a few ms, where timers and the orchestrator's own
 * CPU would swamp them.
 */
async function scaleFor(ctx: BenchContext, size: number): Promise<number> {
  return Math.min(1, (ctx.scale * (await singleStepSeconds(1024))) / (await singleStepSeconds(size)));
}

async function point(scale: number, size: number, concurrency: number, policy: Policy, steps: number): Promise<Point> {
  const engine = createSimulatedEngine({ scale });
  const run = await batcherRun({ runner: engine, policy, size, steps, slots: 16 });
  const t0 = performance.now();
  const timings = await Promise.all(Array.from({ length: concurrency }, (_, i) => run.submit(i)));
  const wallMs = performance.now() - t0;
  return { size, concurrency, policy, wallMs, imagesPerSecond: concurrency / (wallMs / 1000), latency: summarize(timings.map((t) => t.doneMs)), calls: engine.stats.calls };
}

export const throughput: BenchSection = {
  id: "throughput",
  title: "4. Throughput and latency against concurrency (simulated engine, step batching vs whole-job FIFO)",
  item: "4",
  command: "npx tsx scripts/bench/throughput.ts --scale 0.1",
  async run(ctx) {
    const steps = 16;
    const levels = ctx.quick ? [1, 4, 16] : [1, 2, 4, 8, 16];
    const points: Point[] = [];
    const scales = new Map<number, number>();
    for (const size of [256, 512, 1024]) {
      const scale = await scaleFor(ctx, size);
      scales.set(size, scale);
      for (const c of levels) {
        ctx.log(`throughput: ${size}x${size}, ${c} concurrent (scale ${scale.toFixed(3)})`);
        // Interleaved: both policies at one point before the next, so machine noise hits both alike.
        for (const policy of ["step-batching", "fifo"] as const) points.push(await point(scale, size, c, policy, steps));
      }
    }
    const rows = [];
    for (const size of [256, 512, 1024]) {
      for (const c of levels) {
        const b = points.find((p) => p.size === size && p.concurrency === c && p.policy === "step-batching")!;
        const f = points.find((p) => p.size === size && p.concurrency === c && p.policy === "fifo")!;
        const k = scales.get(size)!;
        const s = (ms: number) => fmt(ms / k / 1000);
        rows.push([
          `${size}x${size}`,
          c,
          fmt(b.imagesPerSecond * k),
          fmt(f.imagesPerSecond * k),
          `**${ratio(b.imagesPerSecond, f.imagesPerSecond)}**`,
          `${s(b.latency.median)} / ${s(b.latency.p99)}`,
          `${s(f.latency.median)} / ${s(f.latency.p99)}`,
          ratio(f.latency.median, b.latency.median),
          `${b.calls} / ${f.calls}`,
        ]);
      }
    }
    return {
      markdown: [
        `${steps} steps per request, all submitted at once; 16 slots. Each size runs at the time scale that makes its single-request step last as long as a 1024x1024 step at the suite's scale (${[...scales].map(([sz, k]) => `${sz}: ${k.toFixed(3)}`).join(", ")}); images/s and latencies (submission to last step) are converted back to H100 time by that scale, so the orchestrator's own CPU time is inflated by 1/scale in them. Goal: step batching at least matches FIFO throughput at every point and gains where calls are small (256x256). Sharing the GPU step by step lengthens the median latency of a burst that arrives at once (everyone finishes near the end) while shortening the worst case and admission (section 3).`,
        "",
        ...table(
          ["size", "concurrent", "images/s ours (H100 time)", "images/s FIFO", "throughput ours / FIFO", "latency ours p50 / p99 (s)", "latency FIFO p50 / p99 (s)", "p50 latency FIFO / ours", "engine calls ours / FIFO"],
          rows,
        ),
      ],
      headlines: [256, 1024].map((size) => {
        const c = levels[levels.length - 1];
        const b = points.find((p) => p.size === size && p.concurrency === c && p.policy === "step-batching")!;
        const f = points.find((p) => p.size === size && p.concurrency === c && p.policy === "fifo")!;
        return { figure: `throughput ours / FIFO, ${size}x${size}, ${c} concurrent`, value: ratio(b.imagesPerSecond, f.imagesPerSecond), goal: size === 256 ? "> 1 (batching pays)" : "≥ ~1", met: b.imagesPerSecond >= (size === 256 ? 1.2 : 0.95) * f.imagesPerSecond };
      }),
      data: points,
    };
  },
};

if (isMain(import.meta.url)) await runAlone(throughput);
