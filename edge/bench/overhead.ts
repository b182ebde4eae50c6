// Edge overhead benchmark, side by side in one run against a running edge (wrangler dev or a deployment):
//   livez      GET /livez                     no-op route: global middleware only (request id, CORS, secure headers)
//   auth+rate  GET /v1/models                 + key digest lookup (cached) + Account DO GCRA
//   generate   POST /v1/images/generations    + idempotency-free metering: reserve, orchestrator call, commit
//   backend    the same Generate call made directly to the orchestrator with connect-node (no edge)
// Rounds interleave the routes so machine noise hits all of them alike. `measureEdgeOverhead` is the same
// measurement as a function (scripts/bench/edge-overhead.ts puts it in docs/benchmarks.md).
// Usage: npx tsx edge/bench/overhead.ts --url http://127.0.0.1:8787 --admin <ADMIN_TOKEN>
//          --orchestrator http://127.0.0.1:50051 --token <ORCHESTRATOR_TOKEN> [--seconds 5] [--concurrency 1,16]
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../../proto/gen/dimoo/v1/dimoo_pb";

const GEN = { prompt: "benchmark", size: "64x64", steps: 1, seed: 1 };

/** A key on a "bench" plan whose limits the benchmark cannot hit. */
export async function benchKey(base: string, adminToken: string): Promise<string> {
  const h = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const plan = await fetch(`${base}/admin/plans/bench`, {
    method: "PUT",
    headers: h,
    body: JSON.stringify({ name: "benchmark", rpm: 100_000, burst: 100_000, concurrency: 1000, monthly_units: 2_000_000_000, max_pixels: 4_194_304, max_steps: 256 }),
  });
  if (!plan.ok) throw new Error(`plan: ${plan.status} ${await plan.text()}`);
  const res = await fetch(`${base}/admin/keys`, { method: "POST", headers: h, body: JSON.stringify({ plan: "bench", name: "bench" }) });
  if (!res.ok) throw new Error(`key: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { key: string }).key;
}

type Op = () => Promise<void>;

async function run(op: Op, concurrency: number, ms: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op();
        lat.push(performance.now() - t);
      }
    }),
  );
  return lat;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

export interface EdgeBenchOptions {
  url: string;
  key: string;
  /** Also time the Generate call straight to the orchestrator. */
  orchestrator?: string;
  token?: string;
  /** Seconds per route and concurrency, split over the rounds. */
  seconds: number;
  rounds: number;
  concurrency: number[];
  /** Routes to time (default: all). */
  routes?: string[];
}

export interface EdgeRouteResult {
  route: string;
  concurrency: number;
  requests: number;
  rps: number;
  /** Every latency sample (ms). */
  latencies: number[];
}

export async function measureEdgeOverhead(o: EdgeBenchOptions): Promise<EdgeRouteResult[]> {
  const base = o.url.replace(/\/$/, "");
  const auth = { authorization: `Bearer ${o.key}` };
  const check = (r: Response, what: string) => {
    if (!r.ok) throw new Error(`${what}: HTTP ${r.status}`);
  };
  const ops: Record<string, Op> = {
    livez: async () => {
      const r = await fetch(`${base}/livez`);
      check(r, "livez");
      await r.arrayBuffer();
    },
    "auth+rate": async () => {
      const r = await fetch(`${base}/v1/models`, { headers: auth });
      check(r, "models");
      await r.arrayBuffer();
    },
    generate: async () => {
      const r = await fetch(`${base}/v1/images/generations`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(GEN) });
      check(r, "generate");
      await r.arrayBuffer();
    },
  };
  if (o.orchestrator) {
    const client = createClient(
      DimooService,
      createConnectTransport({ baseUrl: o.orchestrator, httpVersion: "1.1", useBinaryFormat: true, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${o.token ?? ""}`), next(req))] }),
    );
    ops.backend = async () => {
      for await (const _ of client.generate({ task: Task.TEXT_TO_IMAGE, prompt: GEN.prompt, width: 64, height: 64, steps: 1, seed: 1n })) {
        /* drain */
      }
    };
  }
  const chosen = Object.entries(ops).filter(([name]) => !o.routes || o.routes.includes(name));
  for (const [, op] of chosen) await run(op, 1, 300); // warm up isolates, caches, connections
  const ms = (o.seconds * 1000) / o.rounds;
  const out: EdgeRouteResult[] = [];
  for (const c of o.concurrency) {
    const lat: Record<string, number[]> = Object.fromEntries(chosen.map(([k]) => [k, []]));
    for (let r = 0; r < o.rounds; r++) for (const [name, op] of chosen) lat[name].push(...(await run(op, c, ms)));
    for (const [name, xs] of Object.entries(lat)) out.push({ route: name, concurrency: c, requests: xs.length, rps: xs.length / o.seconds, latencies: xs });
  }
  return out;
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:8787" },
      admin: { type: "string" },
      key: { type: "string" },
      orchestrator: { type: "string" },
      token: { type: "string", default: "" },
      seconds: { type: "string", default: "5" },
      concurrency: { type: "string", default: "1,16" },
      rounds: { type: "string", default: "3" },
    },
  });
  const base = values.url!.replace(/\/$/, "");
  let key = values.key;
  if (!key) {
    if (!values.admin) throw new Error("give --key or --admin");
    key = await benchKey(base, values.admin);
  }
  const results = await measureEdgeOverhead({
    url: base,
    key,
    orchestrator: values.orchestrator,
    token: values.token,
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    concurrency: values.concurrency!.split(",").map(Number),
  });
  console.log(`edge ${base}, ${values.seconds}s per route and concurrency, ${values.rounds} interleaved rounds, node ${process.version}`);
  console.log("route       conc   requests    req/s    p50 ms   p90 ms   p99 ms");
  for (const r of results) {
    const xs = r.latencies;
    console.log(`${r.route.padEnd(11)} ${String(r.concurrency).padStart(4)} ${String(r.requests).padStart(10)} ${r.rps.toFixed(0).padStart(8)} ${pct(xs, 50).toFixed(2).padStart(9)} ${pct(xs, 90).toFixed(2).padStart(8)} ${pct(xs, 99).toFixed(2).padStart(8)}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
