// `npx tsx scripts/bench-ml-cache.ts`: the ML-Cache side by side in one run on the dev models: the same
// text-to-image request (default 1024x1024, 64 steps, guidance 4) with the cache off and on, interleaved,
// through the orchestrator and the embedded backend in this process. Reports per image the engine time the
// orchestrator measured in Triton calls, the wall time, the tokens through the transformer, the cached
// steps, and the bytes of tensor data each transformer step sends and receives (request + response), and
// the ratios. Options: --size 1024x1024 --steps 64 --runs 2
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../proto/gen/dimoo/v1/dimoo_pb";
import { ensureDevModels, DEV_MODEL_REPOSITORY } from "../gpu-backend/src/cli/build-dev-models";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL } from "../gpu-backend/src/engine/contract";
import { start as startEmbedded } from "../gpu-backend/src/embedded/server";
import { silentLogger } from "../gpu-backend/src/service/log";
import { startOrchestrator } from "../gpu-backend/src/service/orchestrator";
import type { InferRequest } from "../gpu-backend/src/triton/client";

const { values: opt } = parseArgs({ options: { size: { type: "string", default: "1024x1024" }, steps: { type: "string", default: "64" }, runs: { type: "string", default: "2" } } });
const [W, H] = opt.size!.split("x").map(Number);
const STEPS = Number(opt.steps);
const RUNS = Math.max(1, Number(opt.runs));
const TOKEN = "bench-token";

const dataBytes = (t: { data: ArrayBufferView | unknown }) => ((t.data as ArrayBufferView)?.byteLength ?? 0);

async function main() {
  await ensureDevModels({ log: () => {} });
  const backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0, host: "127.0.0.1" });
  const orch = await startOrchestrator({
    tritonUrl: backend.url,
    token: TOKEN,
    port: 0,
    host: "127.0.0.1",
    modelRepository: DEV_MODEL_REPOSITORY,
    log: silentLogger,
    batcher: { maxBatchTokens: 1 << 16 },
  });
  // Tensor bytes of every transformer call, each way (what the gRPC messages carry, less framing).
  const wire = new Map<string, { calls: number; sent: number; received: number }>();
  const client = orch.engine.client;
  const infer = client.infer.bind(client);
  client.infer = async (model: string, req: InferRequest) => {
    const res = await infer(model, req);
    if (model === TRANSFORMER_MODEL || model === TRANSFORMER_CACHED_MODEL) {
      const w = wire.get(model) ?? { calls: 0, sent: 0, received: 0 };
      w.calls++;
      w.sent += Object.values(req.inputs as Record<string, { data: unknown }>).reduce((n, t) => n + dataBytes(t), 0);
      w.received += Object.values(res.outputs).reduce((n, o) => n + dataBytes(o), 0);
      wire.set(model, w);
    }
    return res;
  };

  const dimoo = createClient(DimooService, createConnectTransport({ baseUrl: orch.url, httpVersion: "1.1" }));
  const run = async (mlCache: boolean, steps = STEPS) => {
    const t0 = performance.now();
    let usage;
    for await (const ev of dimoo.generate(
      { task: Task.TEXT_TO_IMAGE, prompt: "a lighthouse on a cliff at dusk, oil painting", width: W, height: H, steps, seed: 7n, mlCache: { enabled: mlCache } },
      { headers: { authorization: `Bearer ${TOKEN}` }, timeoutMs: 3_600_000 },
    )) {
      if (ev.event.case === "result") usage = ev.event.value.usage;
    }
    return { wallMs: performance.now() - t0, engineMs: usage?.engineMs ?? 0, tokens: Number(usage?.tokensProcessed ?? 0), cached: usage?.cachedSteps ?? 0 };
  };

  console.log(`# ML-Cache on the dev models: ${W}x${H} text-to-image, ${STEPS} steps, guidance 4 (2 branches), ${RUNS} run(s) each, interleaved`);
  const results: Record<"off" | "on", Awaited<ReturnType<typeof run>>[]> = { off: [], on: [] };
  await run(false, 8); // warm-up at the same length: first-call initialisation is not reported
  await run(true, 8);
  wire.clear();
  for (let i = 0; i < RUNS; i++) {
    results.off.push(await run(false));
    results.on.push(await run(true));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const row = (name: "off" | "on") => {
    const r = results[name];
    return { engineMs: median(r.map((x) => x.engineMs)), wallMs: median(r.map((x) => x.wallMs)), tokens: r[0].tokens, cached: r[0].cached };
  };
  const off = row("off"), on = row("on");
  for (const [name, r] of [["cache off", off], ["cache on", on]] as const) {
    console.log(`${name.padEnd(9)}: engine ${(r.engineMs / 1000).toFixed(2)} s per image, wall ${(r.wallMs / 1000).toFixed(2)} s, ${r.tokens} tokens through the transformer, ${r.cached} cached steps`);
  }
  console.log(`ratio    : engine ${(off.engineMs / on.engineMs).toFixed(2)}x, wall ${(off.wallMs / on.wallMs).toFixed(2)}x, tokens ${(off.tokens / on.tokens).toFixed(2)}x (the reference's authors report about 2x on an A800)`);
  for (const [model, w] of wire) {
    console.log(`wire ${model}: ${(w.sent / w.calls / 1024).toFixed(1)} KiB sent + ${(w.received / w.calls / 1024).toFixed(1)} KiB received per step (${w.calls} steps)`);
  }
  await orch.close();
  await backend.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
