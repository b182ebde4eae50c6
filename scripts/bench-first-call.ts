// `npx tsx scripts/bench-first-call.ts [--warm-up on|off]`: the first call of each task family after start
// against its steady state, on the dev models (embedded backend + orchestrator in this process, fresh for
// the run). Each family's request is the small one a newcomer sends first: text-to-image 256x256 and 512x512,
// an edit and an inpaint of a 256x256 photo, and a question about a 64x64 image. Reports, per family, the
// first call's wall time and the median of the next --runs calls. With `--warm-up off` the orchestrator
// skips its start-up warm-up (service/warm-up.ts), which shows what the warm-up buys.
// Options: --warm-up on|off (default on) --steps 8 --runs 3 --json FILE
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService } from "../proto/gen/dimoo/v1/dimoo_pb";
import { DEV_MODEL_REPOSITORY, ensureDevModels } from "../gpu-backend/src/cli/build-dev-models";
import { start as startEmbedded } from "../gpu-backend/src/embedded/server";
import { silentLogger } from "../gpu-backend/src/service/log";
import { startOrchestrator } from "../gpu-backend/src/service/orchestrator";
import { firstCallRequests } from "../gpu-backend/src/service/warm-up";

const { values: opt } = parseArgs({
  options: { "warm-up": { type: "string", default: "on" }, steps: { type: "string", default: "8" }, runs: { type: "string", default: "3" }, json: { type: "string" } },
});
const WARM = opt["warm-up"] !== "off";
const STEPS = Number(opt.steps);
const RUNS = Math.max(1, Number(opt.runs));
const TOKEN = "bench-token";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main() {
  await ensureDevModels({ log: () => {} });
  const t0 = performance.now();
  const backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0, host: "127.0.0.1" });
  const orch = await startOrchestrator({
    tritonUrl: backend.url,
    token: TOKEN,
    port: 0,
    host: "127.0.0.1",
    modelRepository: DEV_MODEL_REPOSITORY,
    log: silentLogger,
    warmUp: WARM ? {} : false,
  });
  await orch.warmedUp;
  const startMs = performance.now() - t0;
  const dimoo = createClient(DimooService, createConnectTransport({ baseUrl: orch.url, httpVersion: "1.1" }));
  const headers = { authorization: `Bearer ${TOKEN}` };
  const rows: { family: string; firstMs: number; steadyMs: number }[] = [];
  for (const req of await firstCallRequests({ steps: STEPS })) {
    const once = async () => {
      const t = performance.now();
      if (req.kind === "generate") for await (const _ of dimoo.generate(req.request, { headers })) void _;
      else for await (const _ of dimoo.understand(req.request, { headers })) void _;
      return performance.now() - t;
    };
    const firstMs = await once();
    const steady: number[] = [];
    for (let i = 0; i < RUNS; i++) steady.push(await once());
    rows.push({ family: req.name, firstMs, steadyMs: median(steady) });
  }
  console.log(`# first call vs steady state on the dev models, warm-up ${WARM ? "on" : "off"}, ${STEPS} steps, start-up ${(startMs / 1000).toFixed(1)} s`);
  for (const r of rows) console.log(`${r.family.padEnd(28)} first ${r.firstMs.toFixed(0).padStart(6)} ms   steady ${r.steadyMs.toFixed(0).padStart(6)} ms   ratio ${(r.firstMs / r.steadyMs).toFixed(2)}x`);
  if (opt.json) await writeFile(opt.json, JSON.stringify({ warmUp: WARM, steps: STEPS, startMs, rows }, null, 2));
  await orch.close();
  await backend.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
