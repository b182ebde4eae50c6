// `npx tsx scripts/measure-cached-selection.ts [--runs 4]`: what evaluating the ML-Cache rule on the engine
// (recompute_codes, quantile_values) costs the dev model: refresh steps of a guided 1024x1024 request on the
// cached model through the embedded backend, alternately with the selection requested and without (the
// embedded backend's onnxruntime computes only the outputs a request fetches). The first pair warms up.
import { parseArgs } from "node:util";
import { DEV_MODEL_REPOSITORY, ensureDevModels } from "../gpu-backend/src/cli/build-dev-models";
import { start as startEmbedded } from "../gpu-backend/src/embedded/server";
import { endingCall, packCachedStep } from "../gpu-backend/src/engine/cached-call";
import { longestRow } from "../gpu-backend/src/engine/packer";
import { TritonEngine } from "../gpu-backend/src/engine/triton-engine";
import { imageDenoisingInputs } from "../gpu-backend/src/sampling/image-denoising";
import { initTextToImage } from "../gpu-backend/src/sampling/text-to-image";
import { TritonClient } from "../gpu-backend/src/triton";

const { values: opt } = parseArgs({ options: { runs: { type: "string", default: "4" } } });

async function main() {
  await ensureDevModels({ log: () => {} });
  const backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0 });
  const engine = new TritonEngine(new TritonClient(backend.url));
  if (!(await engine.detectCachedModel())) throw new Error("the repository has no cached model");
  const inputs = imageDenoisingInputs(
    initTextToImage({
      prompt: Array.from({ length: 100 }, (_, i) => 1000 + i),
      uncondPrompt: Array.from({ length: 30 }, (_, i) => 2000 + i),
      grid: { h: 64, w: 64 },
      cfgScale: 4,
      timesteps: 64,
      temperature: 1,
      seed: 7n,
    }),
  );
  const L = longestRow(inputs);
  const signal = new AbortController().signal;
  const times = { with: [] as number[], without: [] as number[] };
  let id = 1n;
  for (let i = 0; i < Number(opt.runs); i++) {
    for (const select of [true, false]) {
      const call = packCachedStep(inputs, { sequenceId: id++, start: true, end: false, selectForRatio: select ? 0.9 : undefined }, L);
      const t0 = performance.now();
      await engine.cached!.runCachedStep(call, { requestId: "measure", signal });
      if (i > 0) times[select ? "with" : "without"].push(performance.now() - t0);
      await engine.cached!.runCachedStep(endingCall(call), { requestId: "measure", signal });
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const fmt = (xs: number[]) => `median ${(median(xs) / 1000).toFixed(2)} s (${xs.map((x) => (x / 1000).toFixed(2)).join(", ")})`;
  console.log(`refresh step of a guided 1024x1024 request on the cached dev model, L=${L}`);
  console.log(`  with the selection:    ${fmt(times.with)}`);
  console.log(`  without the selection: ${fmt(times.without)}`);
  engine.client.close();
  await backend.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
