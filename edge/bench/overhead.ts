// Edge overhead benchmark, side by side in one run against a running edge (wrangler dev or a deployment):
//   livez      GET /livez                     global middleware only (request id, CORS, secure headers)
//   auth+rate  GET /v1/models                 + key digest lookup (cached) + Account DO GCRA
//   generate   POST /v1/images/generations    + idempotency-free metering: reserve, orchestrator call, commit
//   backend    the same Generate call made directly to the orchestrator with connect-node (no edge)
// Rounds interleave the routes so machine noise hits all of them alike.
// Usage: npx tsx edge/bench/overhead.ts --url http://127.0.0.1:8787 --admin <ADMIN_TOKEN>
//          --orchestrator http://127.0.0.1:50051 --token <ORCHESTRATOR_TOKEN> [--seconds 5] [--concurrency 1,16]
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../../proto/gen/dimoo/v1/dimoo_pb";

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
const GEN = { prompt: "benchmark", size: "64x64", steps: 1, seed: 1 };

async function benchKey(): Promise<string> {
  if (values.key) return values.key;
  if (!values.admin) throw new Error("give --key or --admin");
  const h = { authorization: `Bearer ${values.admin}`, "content-type": "application/json" };
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
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function main() {
  const key = await benchKey();
  const auth = { authorization: `Bearer ${key}` };
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
  if (values.orchestrator) {
    const client = createClient(
      DimooService,
      createConnectTransport({ baseUrl: values.orchestrator, httpVersion: "1.1", useBinaryFormat: true, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${values.token}`), next(req))] }),
    );
    ops.backend = async () => {
      for await (const _ of client.generate({ task: Task.TEXT_TO_IMAGE, prompt: GEN.prompt, width: 64, height: 64, steps: 1, seed: 1n })) {
        /* drain */
      }
    };
  }
  for (const op of Object.values(ops)) await run(op, 1, 300); // warm up isolates, caches, connections
  const ms = (Number(values.seconds) * 1000) / Number(values.rounds);
  console.log(`edge ${base}, ${values.seconds}s per route and concurrency, ${values.rounds} interleaved rounds, node ${process.version}`);
  console.log("route       conc   requests    req/s    p50 ms   p90 ms   p99 ms");
  for (const c of values.concurrency!.split(",").map(Number)) {
    const lat: Record<string, number[]> = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
    for (let r = 0; r < Number(values.rounds); r++) for (const [name, op] of Object.entries(ops)) lat[name].push(...(await run(op, c, ms)));
    for (const [name, xs] of Object.entries(lat)) {
      const rps = xs.length / (Number(values.seconds));
      console.log(`${name.padEnd(11)} ${String(c).padStart(4)} ${String(xs.length).padStart(10)} ${rps.toFixed(0).padStart(8)} ${pct(xs, 50).toFixed(2).padStart(9)} ${pct(xs, 90).toFixed(2).padStart(8)} ${pct(xs, 99).toFixed(2).padStart(8)}`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
