// `npx tsx scripts/result-hashes.ts`: the sha256 of the result image of a few text-to-image requests with the
// cache off and on (fixed seed, dev models, orchestrator and embedded backend in this process), so that two
// checkouts can be compared bit for bit after a change that must not change any result (e.g. the engine's
// wire format): run it in both and diff the output. About 1-2 minutes on 2 cores.
import { createHash } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../proto/gen/dimoo/v1/dimoo_pb";
import { ensureDevModels, DEV_MODEL_REPOSITORY } from "../gpu-backend/src/cli/build-dev-models";
import { start as startEmbedded } from "../gpu-backend/src/embedded/server";
import { silentLogger } from "../gpu-backend/src/service/log";
import { startOrchestrator } from "../gpu-backend/src/service/orchestrator";

async function main() {
  await ensureDevModels({ log: () => {} });
  const backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0, host: "127.0.0.1" });
  const orch = await startOrchestrator({ tritonUrl: backend.url, token: "t", port: 0, host: "127.0.0.1", modelRepository: DEV_MODEL_REPOSITORY, log: silentLogger });
  const dimoo = createClient(DimooService, createConnectTransport({ baseUrl: orch.url, httpVersion: "1.1" }));
  const cases = [
    { size: 256, steps: 16, ml: false },
    { size: 256, steps: 16, ml: true },
    { size: 256, steps: 10, ml: true, warm: 0 },
    { size: 512, steps: 8, ml: true, warm: 0.2 },
    { size: 512, steps: 8, ml: false },
  ];
  for (const c of cases) {
    const h = createHash("sha256");
    for await (const ev of dimoo.generate(
      { task: Task.TEXT_TO_IMAGE, prompt: "a lighthouse on a cliff at dusk", width: c.size, height: c.size, steps: c.steps, seed: 7n, mlCache: { enabled: c.ml, ...(c.warm !== undefined && { warmupRatio: c.warm, refreshInterval: 3 }) } },
      { headers: { authorization: "Bearer t" }, timeoutMs: 3_600_000 },
    )) {
      if (ev.event.case === "result") { h.update(ev.event.value.image); console.log(JSON.stringify(c), h.digest("hex").slice(0, 16), "cached steps", ev.event.value.usage?.cachedSteps); }
    }
  }
  await orch.close();
  await backend.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
