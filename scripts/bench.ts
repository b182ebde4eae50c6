// `npm run bench`: wall time of a generation through the whole stack (default 256x256, 16 steps), and what
// else is cheap to measure on the way:
//   - stack start-up (when the bench starts the stack itself),
//   - the first (cold) generation and N warm ones through the edge (POST /v1/images/generations, b64_json),
//   - the same Generate call made directly to the orchestrator (connect-node), with the Triton time it
//     reports, so the wall time splits into backend (Triton), orchestrator and edge,
//   - a streamed generation: time to the first progress event, first preview, completion,
//   - K concurrent generations (the orchestrator batches them): wall time and images/s,
//   - image understanding (a 64x64 image, 16 answer tokens, 4 steps): cold and warm,
//   - edge overhead: GET /livez and GET /v1/models.
//
// By default it starts its own stack (scripts/start-stack.ts, free ports, throw-away state) and stops it.
// Against a running stack: npm run bench -- --url http://127.0.0.1:8787 --key dmo_live_…
//   [--orchestrator http://127.0.0.1:50051 --token <ORCHESTRATOR_TOKEN>]   (for the direct comparison)
// Options: --size 256x256 --steps 16 --runs 5 --concurrency 4 --json out.json --no-understand
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { cpus, loadavg } from "node:os";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import sharp from "sharp";
import { DimooService, Task } from "../proto/gen/dimoo/v1/dimoo_pb";
import { startStack, type Stack } from "./start-stack";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    key: { type: "string" },
    orchestrator: { type: "string" },
    token: { type: "string" },
    size: { type: "string", default: "256x256" },
    steps: { type: "string", default: "16" },
    runs: { type: "string", default: "5" },
    concurrency: { type: "string", default: "4" },
    json: { type: "string" },
    "no-understand": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opt.help) {
  process.stdout.write("usage: npm run bench -- [--url URL --key KEY [--orchestrator URL --token T]] [--size 256x256] [--steps 16] [--runs 5] [--concurrency 4] [--json FILE] [--no-understand]\n");
  process.exit(0);
}

const SIZE = opt.size!;
const [W, H] = SIZE.split("x").map(Number);
const STEPS = Number(opt.steps);
const RUNS = Math.max(1, Number(opt.runs));
const CONC = Math.max(1, Number(opt.concurrency));

const ms = (t0: number) => performance.now() - t0;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (xs: number[]) => ({ n: xs.length, min: Math.min(...xs), median: median(xs), mean: xs.reduce((a, b) => a + b, 0) / xs.length, max: Math.max(...xs) });
const f = (x: number | undefined) => (x === undefined ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(1));

interface Results {
  machine: Record<string, unknown>;
  params: Record<string, unknown>;
  startupMs?: number;
  coldMs?: number;
  edge?: ReturnType<typeof stats>;
  direct?: ReturnType<typeof stats>;
  engineMs?: ReturnType<typeof stats>;
  stream?: { firstProgressMs: number; firstPreviewMs?: number; completedMs: number };
  concurrent?: { requests: number; wallMs: number; latency: ReturnType<typeof stats>; imagesPerSecond: number };
  understand?: { coldMs: number; warm: ReturnType<typeof stats> };
  overhead?: { livez: ReturnType<typeof stats>; models: ReturnType<typeof stats> };
}

async function main(): Promise<void> {
  const results: Results = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadavg: loadavg().map((l) => +l.toFixed(2)) },
    params: { size: SIZE, steps: STEPS, runs: RUNS, concurrency: CONC },
  };
  let stack: Stack | undefined;
  let dir: string | undefined;
  let edge = opt.url?.replace(/\/$/, "");
  let key = opt.key;
  let orchestrator = opt.orchestrator;
  let token = opt.token;
  const stopAll = async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

  try {
    if (!edge) {
      dir = await mkdtemp(join(tmpdir(), "dimoo-bench-"));
      const env = { ...process.env };
      for (const k of ["TRITON_URL", "ORCHESTRATOR_URLS", "DIMOO_API_KEY"]) delete env[k];
      const t0 = performance.now();
      process.stdout.write("starting the stack (embedded backend, orchestrator, wrangler dev)…\n");
      const lines: string[] = [];
      stack = await startStack({
        ports: { backend: 0, orchestrator: 0, metrics: 0, edge: 0, inspector: 0 },
        env,
        persistTo: join(dir, "state"),
        log: (l) => void (lines.push(l) > 200 && lines.shift()),
      }).catch((e: unknown) => {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${lines.slice(-40).join("\n")}`);
      });
      results.startupMs = ms(t0);
      edge = stack.edgeUrl;
      key = stack.apiKey;
      orchestrator = stack.orchestratorUrls[0];
      token = stack.orchestratorToken;
    }
    if (!key) throw new Error("--key is required with --url");
    const auth = { authorization: `Bearer ${key}` };
    const body = (seed: number, extra: object = {}) => JSON.stringify({ prompt: "a red fox in the snow", size: SIZE, steps: STEPS, seed, ...extra });

    const generate = async (seed: number): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${edge}/v1/images/generations`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: body(seed) });
      const json = (await res.json()) as { data?: { b64_json: string }[]; error?: { message: string } };
      const t = ms(t0);
      if (!res.ok || !json.data?.[0]?.b64_json) throw new Error(`generation failed: ${res.status} ${JSON.stringify(json.error ?? json)}`);
      return t;
    };

    process.stdout.write(`${SIZE}, ${STEPS} steps: cold run, then ${RUNS} warm runs through the edge…\n`);
    results.coldMs = await generate(1);
    const edgeTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) edgeTimes.push(await generate(100 + i));
    results.edge = stats(edgeTimes);

    if (orchestrator && token !== undefined) {
      const bearer: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      const client = createClient(DimooService, createConnectTransport({ baseUrl: orchestrator, httpVersion: "1.1", interceptors: [bearer] }));
      const direct: number[] = [];
      const engine: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        let engineMs = 0;
        for await (const ev of client.generate({ requestId: `bench-${i}`, task: Task.TEXT_TO_IMAGE, prompt: "a red fox in the snow", width: W, height: H, steps: STEPS, seed: BigInt(100 + i) })) {
          if (ev.event.case === "result") engineMs = ev.event.value.usage?.engineMs ?? 0;
        }
        direct.push(ms(t0));
        engine.push(engineMs);
      }
      results.direct = stats(direct);
      results.engineMs = stats(engine);
    }

    {
      const t0 = performance.now();
      const res = await fetch(`${edge}/v1/images/generations`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: body(7, { stream: true, partial_images: 2 }) });
      if (!res.ok) throw new Error(`stream: ${res.status} ${await res.text()}`);
      let firstProgressMs: number | undefined;
      let firstPreviewMs: number | undefined;
      let completedMs: number | undefined;
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        for (const m of buf.matchAll(/^event: (\S+)$/gm)) {
          if (m[1].endsWith(".progress")) firstProgressMs ??= ms(t0);
          if (m[1].endsWith(".partial_image")) firstPreviewMs ??= ms(t0);
          if (m[1].endsWith(".completed")) completedMs ??= ms(t0);
          if (m[1] === "error") throw new Error(`stream error: ${buf}`);
        }
        buf = buf.slice(buf.lastIndexOf("\n") + 1);
      }
      if (firstProgressMs === undefined || completedMs === undefined) throw new Error("the stream had no progress or no completion");
      results.stream = { firstProgressMs, firstPreviewMs, completedMs };
    }

    if (CONC > 1) {
      process.stdout.write(`${CONC} concurrent generations…\n`);
      const t0 = performance.now();
      const lat = await Promise.all(Array.from({ length: CONC }, (_, i) => generate(200 + i)));
      const wallMs = ms(t0);
      results.concurrent = { requests: CONC, wallMs, latency: stats(lat), imagesPerSecond: CONC / (wallMs / 1000) };
    }

    if (!opt["no-understand"]) {
      process.stdout.write("understanding (cold, then 2 warm)…\n");
      const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 60, b: 40 } } }).png().toBuffer();
      const ask = async () => {
        const t0 = performance.now();
        const res = await fetch(`${edge}/v1/chat/completions`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({
            messages: [{ role: "user", content: [{ type: "text", text: "What is in the picture?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${png.toString("base64")}` } }] }],
            max_tokens: 16,
            steps: 4,
          }),
        });
        await res.json();
        if (!res.ok) throw new Error(`understanding failed: ${res.status}`);
        return ms(t0);
      };
      const coldMs = await ask();
      results.understand = { coldMs, warm: stats([await ask(), await ask()]) };
    }

    {
      const time = async (path: string, headers: Record<string, string>) => {
        const xs: number[] = [];
        for (let i = 0; i < 30; i++) {
          const t0 = performance.now();
          const r = await fetch(`${edge}${path}`, { headers });
          await r.arrayBuffer();
          xs.push(ms(t0));
        }
        return stats(xs.slice(5)); // first few warm the connection and caches
      };
      results.overhead = { livez: await time("/livez", {}), models: await time("/v1/models", auth) };
    }
  } finally {
    await stopAll();
  }

  report(results);
  if (opt.json) await writeFile(opt.json, JSON.stringify(results, null, 2));
}

function report(r: Results): void {
  const out: string[] = [];
  const m = r.machine;
  out.push(`\nLumina-DiMOO stack benchmark — ${m.cpus} × ${m.cpu}, Node ${m.node}, load ${(m.loadavg as number[]).join(" ")} (dev models: tiny and random)`);
  out.push("");
  out.push("| measurement | median ms | min | max | n |");
  out.push("|---|---|---|---|---|");
  const row = (name: string, s?: { median: number; min: number; max: number; n: number }) => s && out.push(`| ${name} | ${f(s.median)} | ${f(s.min)} | ${f(s.max)} | ${s.n} |`);
  const one = (name: string, v?: number) => v !== undefined && out.push(`| ${name} | ${f(v)} | | | 1 |`);
  one("stack start-up (npm start equivalent, models already built)", r.startupMs);
  one(`${SIZE}, ${STEPS} steps through the edge, first (cold) request`, r.coldMs);
  row(`**${SIZE}, ${STEPS} steps through the whole stack (edge → orchestrator → backend)**`, r.edge);
  row(`the same Generate straight to the orchestrator (no edge)`, r.direct);
  row(`of which inside Triton (engine_ms reported by the orchestrator)`, r.engineMs);
  if (r.stream) {
    one("streamed: first progress event", r.stream.firstProgressMs);
    one("streamed: first preview", r.stream.firstPreviewMs);
    one("streamed: completed", r.stream.completedMs);
  }
  if (r.concurrent) {
    one(`${r.concurrent.requests} concurrent generations: wall time for all`, r.concurrent.wallMs);
    row(`${r.concurrent.requests} concurrent generations: latency of each`, r.concurrent.latency);
  }
  if (r.understand) {
    one("understanding 64x64, 16 tokens, 4 steps: first (cold)", r.understand.coldMs);
    row("understanding: warm", r.understand.warm);
  }
  if (r.overhead) {
    row("GET /livez (edge, no key)", r.overhead.livez);
    row("GET /v1/models (edge, key + rate limit)", r.overhead.models);
  }
  if (r.edge && r.direct && r.engineMs) {
    out.push("");
    out.push(
      `Split of the median ${f(r.edge.median)} ms: Triton ${f(r.engineMs.median)} ms, orchestrator ${f(r.direct.median - r.engineMs.median)} ms, ` +
        `edge (wrangler dev, metering, Connect hop) ${f(r.edge.median - r.direct.median)} ms.`,
    );
  }
  if (r.concurrent && r.edge) {
    out.push(`Throughput: ${r.concurrent.imagesPerSecond.toFixed(2)} images/s with ${r.concurrent.requests} in flight vs ${(1000 / r.edge.median).toFixed(2)} one at a time.`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
