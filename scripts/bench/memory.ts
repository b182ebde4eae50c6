// Item 6: memory and responsiveness under load.
//   (a) The orchestrator's step loop (real pipeline and batcher, service defaults: 8 slots) with 32
//       concurrent 1024x1024 requests in flight on the simulated engine, in a fresh child process so its
//       resident memory is the orchestrator's alone: RSS before and at peak, and event-loop delay
//       (perf_hooks.monitorEventLoopDelay) while they run.
//   (b) 200 concurrent SSE streams (64x64, 8 steps) held open through the edge of the local stack: resident
//       memory of the orchestrator and of the edge (wrangler + workerd) from /proc before and at peak, and
//       the orchestrator's Health round trip while they are open (its event loop's responsiveness seen from
//       outside).
import { spawn } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { batcherRun, imagePipeline } from "./harness";
import { createSimulatedEngine } from "./simulated-engine";
import { isMain, runAlone, type BenchContext, type BenchSection } from "./section";
import { groupRss, type BenchStack } from "./stack";
import { fmt, mib, sleep, summarize, table } from "./stats";

const CHILD_FLAG = "--orchestrator-child";

interface LoopLoad {
  requests: number;
  rssBefore: number;
  rssPeak: number;
  heapPeak: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  wallMs: number;
}

/** Runs in the child: 32 concurrent 1024x1024 requests through the step loop. */
async function orchestratorUnderLoad(scale: number, requests: number, steps: number): Promise<LoopLoad> {
  await imagePipeline();
  const engine = createSimulatedEngine({ scale });
  const run = await batcherRun({ runner: engine, policy: "step-batching", size: 1024, steps, slots: 8 });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore, heapPeak = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  }, 20);
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: requests }, (_, i) => run.submit(i)));
  const wallMs = performance.now() - t0;
  lag.disable();
  clearInterval(sampler);
  return { requests, rssBefore, rssPeak, heapPeak, lagP50Ms: lag.percentile(50) / 1e6, lagP99Ms: lag.percentile(99) / 1e6, lagMaxMs: lag.max / 1e6, wallMs };
}

function runChild(scale: number, requests: number, steps: number): Promise<LoopLoad> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), CHILD_FLAG, String(scale), String(requests), String(steps)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!) as LoopLoad) : reject(new Error(`orchestrator child exited with ${code}`))));
  });
}

interface StreamLoad {
  streams: number;
  /** Generate calls the orchestrator finished meanwhile (its metrics), whatever their outcome. */
  orchestratorFinished: number;
  opened: number;
  completed: number;
  failed: string[];
  rss: Record<string, { before: number; peak: number }>;
  health: ReturnType<typeof summarize>;
  wallMs: number;
}

/** Generate calls the orchestrator has finished, from its Prometheus metrics. */
async function generateCalls(stack: BenchStack): Promise<number> {
  if (!stack.metricsUrl) return NaN;
  const text = await (await fetch(stack.metricsUrl)).text();
  let n = 0;
  for (const m of text.matchAll(/^dimoo_orchestrator_requests_total\{[^}]*method="Generate"[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

async function streamsThroughEdge(stack: BenchStack, streams: number): Promise<StreamLoad> {
  const callsBefore = await generateCalls(stack);
  const parts = Object.entries(stack.pids).filter(([name]) => name === "orchestrator" || name === "edge" || name === "backend");
  const rss: StreamLoad["rss"] = {};
  for (const [name, pid] of parts) {
    const v = await groupRss(pid);
    rss[name] = { before: v, peak: v };
  }
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [name, pid] of parts) rss[name].peak = Math.max(rss[name].peak, await groupRss(pid));
      await sleep(200);
    }
  })();
  const health: number[] = [];
  const prober = (async () => {
    while (sampling) {
      const t = performance.now();
      const r = await fetch(`${stack.orchestratorUrls[0]}/dimoo.v1.DimooService/Health`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${stack.orchestratorToken}` },
        body: "{}",
      }).catch(() => undefined);
      await r?.arrayBuffer();
      if (r?.ok) health.push(performance.now() - t);
      await sleep(100);
    }
  })();
  let opened = 0, completed = 0;
  const failed: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      try {
        const res = await fetch(`${stack.edgeUrl}/v1/images/generations`, {
          method: "POST",
          headers: { authorization: `Bearer ${stack.benchKey}`, "content-type": "application/json" },
          body: JSON.stringify({ prompt: `stream ${i}`, size: "64x64", steps: 8, seed: i, stream: true }),
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${await res.text()}`);
        opened++;
        let text = "";
        const decoder = new TextDecoder();
        for await (const chunk of res.body) text += decoder.decode(chunk as Uint8Array, { stream: true });
        if (/\.completed/.test(text)) completed++;
        else throw new Error(`no completion: ${text.slice(-200)}`);
      } catch (e) {
        failed.push(e instanceof Error ? e.message : String(e));
      }
    }),
  );
  const wallMs = performance.now() - t0;
  sampling = false;
  await Promise.all([sampler, prober]);
  return { streams, orchestratorFinished: (await generateCalls(stack)) - callsBefore, opened, completed, failed, rss, health: summarize(health), wallMs };
}

export const memory: BenchSection = {
  id: "memory",
  title: "6. Memory and event-loop lag under load",
  item: "6",
  command: "npx tsx scripts/bench/memory.ts --scale 0.1",
  async run(ctx: BenchContext) {
    const steps = ctx.quick ? 8 : 16;
    ctx.log("memory: 32 concurrent 1024x1024 requests in a fresh orchestrator process");
    const a = await runChild(ctx.scale, 32, steps);
    const stack = await ctx.stack();
    await stack.settle();
    const streams = 200;
    ctx.log(`memory: ${streams} concurrent SSE streams through the edge`);
    const b = await streamsThroughEdge(stack, streams);
    const rssRows = Object.entries(b.rss).map(([name, r]) => [name === "edge" ? "edge (wrangler + workerd)" : name === "backend" ? "embedded backend (dev models)" : "orchestrator", mib(r.before), mib(r.peak), mib(r.peak - r.before)]);
    return {
      markdown: [
        `**(a) Orchestrator step loop, 32 concurrent 1024x1024 requests** (${steps} steps each, guidance 4, 8 slots as the service defaults, simulated engine at scale ${ctx.scale}; a fresh process):`,
        "",
        ...table(
          ["RSS before", "RSS peak", "growth", "heap peak", "event-loop delay p50 / p99 / max (ms)", "goal"],
          [[mib(a.rssBefore), mib(a.rssPeak), mib(a.rssPeak - a.rssBefore), mib(a.heapPeak), `${fmt(a.lagP50Ms)} / ${fmt(a.lagP99Ms)} / ${fmt(a.lagMaxMs)}`, "delay p99 well under one step (190 ms); growth bounded (tens of MiB)"]],
        ),
        "",
        `**(b) ${streams} concurrent SSE streams held open through the edge** (64x64, 8 steps each, one account on a plan without practical limits; the orchestrator queues what its 8 slots cannot run, so the streams stay open for the whole run of ${fmt(b.wallMs / 1000)} s): ${b.opened} opened, ${b.completed} completed, ${b.failed.length} failed${b.failed.length ? ` (first: ${b.failed[0].slice(0, 160).replace(/\s+/g, " ")})` : ""}; the orchestrator finished ${b.orchestratorFinished} Generate calls meanwhile.`,
        ...(b.failed.length && b.orchestratorFinished < b.streams
          ? [
              "",
              `The ${b.streams - b.orchestratorFinished} streams the orchestrator never saw failed inside the edge's backend pool (backend_unavailable, 10-20 s after their SSE had opened). Likely cause, not yet verified: under this load the pool's Health probe of the only orchestrator exceeds its 1.5 s timeout, which drops the host from the candidates until the next probe 5 s later (edge/src/backend/pool.ts), so every request reaching the pool in that window fails without trying it.`,
            ]
          : []),
        "",
        ...table(["process", "RSS before", "RSS peak", "growth"], rssRows),
        "",
        `Orchestrator Health round trip while the streams were open: p50 ${fmt(b.health.median)} ms, p99 ${fmt(b.health.p99)} ms (n = ${b.health.n}).`,
      ],
      headlines: [
        { figure: "orchestrator with 32 concurrent 1024x1024: RSS growth, event-loop delay p99", value: `${mib(a.rssPeak - a.rssBefore)}, ${fmt(a.lagP99Ms)} ms`, goal: "tens of MiB; p99 ≪ 190 ms", met: a.rssPeak - a.rssBefore < 64 * 1024 * 1024 && a.lagP99Ms < 100 },
        { figure: `${streams} SSE streams held open through the edge: completed`, value: `${b.completed} / ${streams}`, goal: `${streams} / ${streams}`, met: b.completed === streams },
        ...(b.rss.edge ? [{ figure: `edge (workerd) RSS growth with ${streams} streams`, value: mib(b.rss.edge.peak - b.rss.edge.before), goal: "bounded (Workers isolate limit 128 MB)" }] : []),
      ],
      data: { orchestrator: a, streams: { ...b, health: b.health } },
    };
  },
};

if (process.argv[2] === CHILD_FLAG) {
  const [scale, requests, steps] = process.argv.slice(3).map(Number);
  const r = await orchestratorUnderLoad(scale, requests, steps);
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
} else if (isMain(import.meta.url)) await runAlone(memory);
