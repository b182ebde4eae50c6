// Item 3: admission latency. Four 1024x1024 requests (guidance 4) are mid-generation (32 of their 256
// request-steps done) when a fifth arrives; its time from submission to its first progress event, with
// step-level batching against the reference scripts' whole-job first-in-first-out (one request at a time,
// every step of it), on the simulated engine. Also, folded in from the old bench-fair-share.ts: a tenant
// that floods the batcher against one that sends requests one at a time, with one shared queue and with
// the fair share between tenants.
import { batcherRun, type BatcherRun, type Policy } from "./harness";
import { createSimulatedEngine } from "./simulated-engine";
import { isMain, runAlone, type BenchContext, type BenchSection } from "./section";
import { fmt, median, percentile, ratio, summarize, table } from "./stats";

const RUNNING = 4;

async function arrivalLatency(ctx: BenchContext, policy: Policy, steps: number): Promise<number> {
  const engine = createSimulatedEngine({ scale: ctx.scale });
  const run = await batcherRun({ runner: engine, policy, size: 1024, steps, slots: 8 });
  let done = 0;
  const arrivalAt = (RUNNING * steps) / 8;
  let arrived: Promise<number> | undefined;
  let signal!: () => void;
  const mid = new Promise<void>((r) => (signal = r));
  const others = Array.from({ length: RUNNING }, (_, i) =>
    run.submit(i, {
      onStep: () => {
        if (++done === arrivalAt) signal();
      },
    }),
  );
  await mid;
  arrived = run.submit(RUNNING).then((t) => t.firstStepMs);
  const [latency] = await Promise.all([arrived, ...others]);
  return latency;
}

async function fairShare(ctx: BenchContext, flood: boolean, tagged: boolean, probes: number): Promise<number[]> {
  const engine = createSimulatedEngine({ scale: ctx.scale });
  const run: BatcherRun = await batcherRun({ runner: engine, policy: "step-batching", size: 256, steps: 16, slots: 8, slotsPerTenant: 4 });
  // The flooding tenant keeps 24 requests outstanding until the probes are done.
  let flooding = flood;
  let n = 100;
  const floodLoop = async () => {
    while (flooding) await run.submit(n++, { tenant: tagged ? "flood" : undefined });
  };
  const floods = flood ? Array.from({ length: 24 }, floodLoop) : [];
  await new Promise((r) => setTimeout(r, 20));
  const lat: number[] = [];
  for (let i = 0; i < probes; i++) lat.push((await run.submit(i, { tenant: tagged ? "probe" : undefined })).doneMs);
  flooding = false;
  await Promise.all(floods);
  return lat;
}

export const admission: BenchSection = {
  id: "admission",
  title: "3. Admission latency while 4 requests are mid-generation (1024x1024, simulated engine)",
  item: "3",
  command: "npx tsx scripts/bench/admission.ts --scale 0.1",
  async run(ctx) {
    const steps = ctx.quick ? 16 : 64;
    const trials = ctx.quick ? 1 : 3;
    const lat: Record<Policy, number[]> = { "step-batching": [], fifo: [] };
    for (let t = 0; t < trials; t++) {
      for (const policy of ["step-batching", "fifo"] as const) {
        ctx.log(`admission: ${policy}, trial ${t + 1}/${trials}`);
        lat[policy].push(await arrivalLatency(ctx, policy, steps));
      }
    }
    const b = summarize(lat["step-batching"]), f = summarize(lat.fifo);
    const h100 = (ms: number) => fmt(ms / ctx.scale / 1000);
    const probes = ctx.quick ? 3 : 6;
    ctx.log("fair share: probe alone, with a flood in one queue, with a flood by tenant");
    const alone = await fairShare(ctx, false, true, probes);
    const shared = await fairShare(ctx, true, false, probes);
    const fair = await fairShare(ctx, true, true, probes);
    return {
      markdown: [
        `${steps} steps per request; the fifth arrives when the four have done ${(RUNNING * steps) / 8} request-steps between them. ${trials} trial(s) per policy, interleaved; p99 of ${trials} samples is their maximum.`,
        "",
        ...table(
          ["policy", "time to first progress event: median (ms, as run)", "p99 (ms, as run)", "median at H100 time (s)", "goal"],
          [
            ["step-level batching (ours)", fmt(b.median), fmt(b.p99), h100(b.median), "within two engine calls"],
            ["whole-job FIFO (reference scripts)", fmt(f.median), fmt(f.p99), h100(f.median), "–"],
            ["**ratio FIFO / ours**", `**${ratio(f.median, b.median)}**`, ratio(f.p99, b.p99), "", "≫ 1"],
          ],
        ),
        "",
        `Fair share (folded in from the old scripts/bench-fair-share.ts): one tenant keeps 24 requests of 256x256, 16 steps, outstanding against 8 slots (4 per named tenant) while another sends ${probes} one at a time; the probe's latency (submission to last step).`,
        "",
        ...table(
          ["probe tenant", "latency median (ms, as run)", "p99", "vs alone (median)"],
          [
            ["alone", fmt(median(alone)), fmt(percentile(alone, 99)), "1.00x"],
            ["with the flood, one shared queue", fmt(median(shared)), fmt(percentile(shared, 99)), ratio(median(shared), median(alone))],
            ["with the flood, fair share by tenant (ours)", fmt(median(fair)), fmt(percentile(fair, 99)), ratio(median(fair), median(alone))],
          ],
        ),
      ],
      headlines: [
        { figure: "admission while 4 run, 1024x1024: time to first progress, ours (H100 time)", value: `${h100(b.median)} s`, goal: "within two engine calls (≤ ~0.8 s)", met: b.median / ctx.scale / 1000 <= 0.8 },
        { figure: "admission latency ratio, whole-job FIFO / ours", value: ratio(f.median, b.median), goal: "≫ 1", met: f.median / b.median > 5 },
        { figure: "probe tenant under a flood, fair share: p50 vs alone", value: ratio(median(fair), median(alone)), goal: "well below one shared queue's " + ratio(median(shared), median(alone)), met: median(fair) < median(shared) },
      ],
      data: { admission: lat, fairShare: { alone, shared, fair } },
    };
  },
};

if (isMain(import.meta.url)) await runAlone(admission);
