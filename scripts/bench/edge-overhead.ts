// Item 5: the edge's overhead in local workerd (wrangler dev), interleaved in one run
// (edge/bench/overhead.ts): the no-op route (/livez: global middleware only) against /v1/models (API key,
// rate limit) and the metered generation path (reserve, orchestrator call, commit) against the same
// Generate made straight to the orchestrator. Requests per second, p50/p99 and the ratios.
import { measureEdgeOverhead, type EdgeRouteResult } from "../../edge/bench/overhead";
import { isMain, runAlone, type BenchSection } from "./section";
import { fmt, percentile, ratio, table, verdict } from "./stats";

export const MODELS_GOAL = 1.2;

export const edgeOverhead: BenchSection = {
  id: "edge-overhead",
  title: "5. Edge overhead in local workerd (wrangler dev)",
  item: "5",
  command: "npx tsx scripts/bench/edge-overhead.ts",
  async run(ctx) {
    const stack = await ctx.stack();
    await stack.settle();
    const seconds = ctx.quick ? 2 : 6;
    const concurrency = [1, 16];
    ctx.log(`edge overhead: ${seconds} s per route and concurrency`);
    const results = await measureEdgeOverhead({
      url: stack.edgeUrl,
      key: stack.benchKey,
      orchestrator: stack.orchestratorUrls[0],
      token: stack.orchestratorToken,
      seconds,
      rounds: 3,
      concurrency,
    });
    const get = (route: string, c: number) => results.find((r) => r.route === route && r.concurrency === c)!;
    const p = (r: EdgeRouteResult, q: number) => percentile(r.latencies, q);
    const rows: (string | number)[][] = [];
    const names: Record<string, string> = {
      livez: "GET /livez (no-op route)",
      "auth+rate": "GET /v1/models (key, rate limit)",
      generate: "POST /v1/images/generations 64x64, 1 step (metered)",
      backend: "the same Generate straight to the orchestrator",
    };
    for (const c of concurrency) {
      const base = get("livez", c), models = get("auth+rate", c), gen = get("generate", c), backend = get("backend", c);
      const modelsRatio = p(models, 50) / p(base, 50);
      for (const r of [base, models, gen, backend]) {
        const vs = r === models ? `${ratio(p(models, 50), p(base, 50))} p50, ${ratio(base.rps, models.rps)} rps` : r === gen ? `+${fmt(p(gen, 50) - p(backend, 50))} ms p50 over direct` : "";
        const goal = r === models ? `≤ ${MODELS_GOAL}x ${verdict(modelsRatio, MODELS_GOAL)}` : "";
        rows.push([names[r.route], c, r.requests, fmt(r.rps), fmt(p(r, 50)), fmt(p(r, 99)), vs, goal]);
      }
    }
    return {
      markdown: [
        `${seconds} s per route and concurrency in 3 interleaved rounds; the benchmark client runs on the same 2 cores as workerd, the orchestrator and the embedded backend.`,
        "",
        ...table(["route", "concurrent", "requests", "req/s", "p50 ms", "p99 ms", "vs its baseline", "goal"], rows),
      ],
      headlines: concurrency.map((c) => {
        const r = p(get("auth+rate", c), 50) / p(get("livez", c), 50);
        return { figure: `edge: GET /v1/models p50 vs the no-op route, ${c} concurrent`, value: `${r.toFixed(2)}x`, goal: `≤ ${MODELS_GOAL}x`, met: r <= MODELS_GOAL };
      }),
      data: results.map(({ latencies, ...r }) => ({ ...r, p50: percentile(latencies, 50), p99: percentile(latencies, 99) })),
    };
  },
};

if (isMain(import.meta.url)) await runAlone(edgeOverhead);
