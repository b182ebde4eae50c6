// `npx tsx scripts/bench-ml-cache.ts`: the ML-Cache side by side in one run: the same request with the
// cache off and on, interleaved, through the orchestrator and the embedded backend in this process.
// Reports per image the engine time the orchestrator measured in Triton calls, the wall time, the process's
// CPU time, the tokens through the transformer, the cached steps, the mean time of each kind of step
// (uncached, refresh, cached), the bytes of tensor data each transformer step sends and receives (request +
// response), and the off/on ratios. Progress goes to stderr, the figures to stdout.
//
// Options (stable: `npm run bench` runs this as a subprocess):
//   --task text-to-image|image-to-image   default text-to-image (guidance 4, two branches). image-to-image
//                             is an edit of a synthetic --size input (three branches; the output takes the
//                             input's 512-class crop, so --size only sets the input).
//   --size WxH                default 1024x1024
//   --steps N                 default 64
//   --runs N                  default 2 (the median per mode is reported)
//   --width N --layers N      serve a transformer scaled to these widths instead of the tiny dev one (d_model
//                             64, 2 layers): same builder, graphs and seeded-weight recipe, built into a
//                             temporary model repository (VQ models and tokenizer hard-linked from
//                             model-repository/) and removed afterwards. Both or neither.
//   --heads N                 with --width: attention heads (default width/128, the real head dimension)
//   --mlp N                   with --width: MLP hidden width (default 3 x width, the real ratio)
//   --project-steps N         also project the engine time of an N-step image from the mean time of each
//                             kind of step (default 64), for runs with fewer --steps on a slow machine
//   --json FILE               also write the figures as JSON (schema: BenchResult below)
//
// Engine and wall times are wall-clock: on a shared machine other load inflates them, so say so with the
// figures; the CPU time counts only this process's work (orchestrator, backend, onnxruntime threads).
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../proto/gen/dimoo/v1/dimoo_pb";
import { ensureDevModels, DEV_MODEL_REPOSITORY } from "../gpu-backend/src/cli/build-dev-models";
import { buildScaledDevRepository, removeScaledDevRepository, scaledTransformerConfig } from "../gpu-backend/src/cli/scaled-dev-models";
import { devTransformerConfig, type LladaConfig } from "../gpu-backend/src/builder/llada/config";
import { TRANSFORMER_CACHED_INPUTS as CI, TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL } from "../gpu-backend/src/engine/contract";
import { start as startEmbedded } from "../gpu-backend/src/embedded/server";
import { silentLogger } from "../gpu-backend/src/service/log";
import { startOrchestrator } from "../gpu-backend/src/service/orchestrator";
import type { InferRequest } from "../gpu-backend/src/triton/client";
import { CODEBOOK_SIZE } from "../gpu-backend/src/model/tokens";
import { mlCacheRefreshSteps } from "../gpu-backend/src/sampling/ml-cache";

const { values: opt } = parseArgs({
  options: {
    task: { type: "string", default: "text-to-image" },
    size: { type: "string", default: "1024x1024" },
    steps: { type: "string", default: "64" },
    runs: { type: "string", default: "2" },
    width: { type: "string" },
    layers: { type: "string" },
    heads: { type: "string" },
    mlp: { type: "string" },
    json: { type: "string" },
    "project-steps": { type: "string", default: "64" },
  },
});
const [W, H] = opt.size!.split("x").map(Number);
const STEPS = Number(opt.steps);
const RUNS = Math.max(1, Number(opt.runs));
const TASK = opt.task!;
if (TASK !== "text-to-image" && TASK !== "image-to-image") throw new Error(`--task must be text-to-image or image-to-image, got ${TASK}`);
if (!(W > 0 && H > 0 && STEPS > 0)) throw new Error("--size WxH and --steps N must be positive");
if ((opt.width === undefined) !== (opt.layers === undefined)) throw new Error("--width and --layers go together");
const TOKEN = "bench-token";

const dataBytes = (t: { data: ArrayBufferView | unknown }) => ((t.data as ArrayBufferView)?.byteLength ?? 0);

interface ModeResult {
  engineMs: number;
  wallMs: number;
  /**
   * CPU time of this process (orchestrator, embedded backend and its onnxruntime threads) during the
   * request: the work done, which other load on a shared machine does not inflate as it does wall times.
   */
  cpuMs: number;
  tokens: number;
  cachedSteps: number;
  /** Image size the request produced. */
  width: number;
  height: number;
  /** Transformer calls of one image and the tensor bytes each way per call (mean over the mode's calls). */
  calls: number;
  bytesSentPerStep: number;
  bytesReceivedPerStep: number;
  /** Mean time of one transformer call by kind, as the client saw it (uncached; the cached model's refresh and cached steps). */
  msPerStep: Partial<Record<StepKind, number>>;
}

type StepKind = "uncached" | "refresh" | "cached";

/** What --json writes. */
export interface BenchResult {
  task: string;
  size: string;
  steps: number;
  runs: number;
  transformer: { dModel: number; nLayers: number; nHeads: number; mlpHidden: number; scaled: boolean };
  /** Per-position state of the cached model, bytes (fp32 keys and values of every layer, codebook logits). */
  stateBytesPerPosition: number;
  off: ModeResult;
  on: ModeResult;
  ratios: { engine: number; wall: number; cpu: number; tokens: number };
  /**
   * The engine time of a --project-steps image from the mean time of each kind of step: off = T x uncached,
   * on = refresh steps x refresh + cached steps x cached (the schedule of T steps). Absent when a kind is missing.
   */
  projected?: { steps: number; offMs: number; onMs: number; ratio: number };
}

async function inputImage(): Promise<Uint8Array> {
  // A smooth synthetic picture (gradients and a disc), so the VQ encoder sees structure, not noise.
  const raw = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = 3 * (y * W + x);
      const inDisc = (x - W / 2) ** 2 + (y - H / 2) ** 2 < (Math.min(W, H) / 4) ** 2;
      raw[i] = inDisc ? 220 : (255 * x) / W;
      raw[i + 1] = inDisc ? 60 : (255 * y) / H;
      raw[i + 2] = 128;
    }
  return sharp(raw, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}

async function main() {
  let cfg: LladaConfig = devTransformerConfig();
  let repository = DEV_MODEL_REPOSITORY;
  let tmp: string | undefined;
  if (opt.width !== undefined) {
    cfg = scaledTransformerConfig({
      dModel: Number(opt.width),
      nLayers: Number(opt.layers),
      nHeads: opt.heads === undefined ? undefined : Number(opt.heads),
      mlpHidden: opt.mlp === undefined ? undefined : Number(opt.mlp),
    });
    tmp = await mkdtemp(join(tmpdir(), "bench-ml-cache-"));
    repository = tmp;
    const dir = tmp;
    for (const sig of ["SIGINT", "SIGTERM"] as const)
      process.once(sig, () => void removeScaledDevRepository(dir).finally(() => process.exit(130)));
    await buildScaledDevRepository(tmp, cfg, (m) => console.log(`# ${m}`));
  } else {
    await ensureDevModels({ log: () => {} });
  }
  const backend = await startEmbedded({ repository, port: 0, host: "127.0.0.1" });
  const orch = await startOrchestrator({
    tritonUrl: backend.url,
    token: TOKEN,
    port: 0,
    host: "127.0.0.1",
    modelRepository: repository,
    log: silentLogger,
    batcher: { maxBatchTokens: 1 << 16 },
  });
  // Tensor bytes of every transformer call, each way (what the gRPC messages carry, less framing).
  // Also each call's time by kind: a cached model's call is a refresh when it recomputes every position.
  let wire = { calls: 0, sent: 0, received: 0 };
  let callMs: Record<StepKind, number[]> = { uncached: [], refresh: [], cached: [] };
  const client = orch.engine.client;
  const infer = client.infer.bind(client);
  client.infer = async (model: string, req: InferRequest) => {
    const t0 = performance.now();
    const res = await infer(model, req);
    if (model === TRANSFORMER_MODEL || model === TRANSFORMER_CACHED_MODEL) {
      const inputs = req.inputs as unknown as Record<string, { shape: number[]; data: unknown }>;
      // a refresh sends an empty recompute list (every position), or one naming every position
      const P = model === TRANSFORMER_MODEL ? -1 : inputs[CI.recompute.name].shape[1];
      const kind: StepKind = P < 0 ? "uncached" : P === 0 || P === inputs[CI.inputIds.name].shape[1] ? "refresh" : "cached";
      callMs[kind].push(performance.now() - t0);
      wire.calls++;
      wire.sent += Object.values(inputs).reduce((n, t) => n + dataBytes(t), 0);
      wire.received += Object.values(res.outputs).reduce((n, o) => n + dataBytes(o), 0);
    }
    return res;
  };

  const image = TASK === "image-to-image" ? await inputImage() : undefined;
  const dimoo = createClient(DimooService, createConnectTransport({ baseUrl: orch.url, httpVersion: "1.1" }));
  const run = async (mlCache: boolean, steps = STEPS) => {
    const request =
      TASK === "text-to-image"
        ? { task: Task.TEXT_TO_IMAGE, prompt: "a lighthouse on a cliff at dusk, oil painting", width: W, height: H }
        : { task: Task.EDIT, editType: "edit_replace", prompt: "replace the disc with a red apple", images: [image!] };
    wire = { calls: 0, sent: 0, received: 0 };
    callMs = { uncached: [], refresh: [], cached: [] };
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let result;
    for await (const ev of dimoo.generate({ ...request, steps, seed: 7n, mlCache: { enabled: mlCache } }, { headers: { authorization: `Bearer ${TOKEN}` }, timeoutMs: 3_600_000 })) {
      if (ev.event.case === "result") result = ev.event.value;
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (!result) throw new Error("no result");
    const meta = await sharp(result.image).metadata();
    const u = result.usage;
    return {
      wallMs,
      engineMs: u?.engineMs ?? 0,
      cpuMs: (cpu.user + cpu.system) / 1000,
      tokens: Number(u?.tokensProcessed ?? 0),
      cachedSteps: u?.cachedSteps ?? 0,
      width: meta.width ?? 0,
      height: meta.height ?? 0,
      calls: wire.calls,
      bytesSentPerStep: wire.calls ? wire.sent / wire.calls : 0,
      bytesReceivedPerStep: wire.calls ? wire.received / wire.calls : 0,
      msPerStep: Object.fromEntries(Object.entries(callMs).filter(([, v]) => v.length).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) / v.length])),
    } satisfies ModeResult;
  };

  const what = `${TASK} ${TASK === "text-to-image" ? `${W}x${H}` : `from a ${W}x${H} input`}, ${STEPS} steps`;
  const model = `transformer d_model ${cfg.dModel}, ${cfg.nLayers} layers, ${cfg.nHeads} heads, MLP ${cfg.mlpHidden}${tmp ? " (scaled)" : " (dev)"}`;
  console.log(`# ML-Cache side by side: ${what}, ${model}, ${RUNS} run(s) each, interleaved`);
  const results: Record<"off" | "on", ModeResult[]> = { off: [], on: [] };
  try {
    await run(false, 8); // warm-up at the same length: first-call initialisation is not reported
    await run(true, 8);
    for (let i = 0; i < RUNS; i++) {
      for (const mode of ["off", "on"] as const) {
        const r = await run(mode === "on");
        results[mode].push(r);
        console.error(`# run ${i + 1} cache ${mode}: engine ${(r.engineMs / 1000).toFixed(1)} s, wall ${(r.wallMs / 1000).toFixed(1)} s`);
      }
    }
  } finally {
    await orch.close();
    await backend.close();
    if (tmp) await removeScaledDevRepository(tmp);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const row = (name: "off" | "on"): ModeResult => {
    const r = results[name];
    const msPerStep: ModeResult["msPerStep"] = {};
    for (const k of ["uncached", "refresh", "cached"] as const) {
      const xs = r.map((x) => x.msPerStep[k]).filter((x): x is number => x !== undefined);
      if (xs.length) msPerStep[k] = median(xs);
    }
    return { ...r[0], engineMs: median(r.map((x) => x.engineMs)), wallMs: median(r.map((x) => x.wallMs)), cpuMs: median(r.map((x) => x.cpuMs)), msPerStep };
  };
  const off = row("off"), on = row("on");
  const kiB = (n: number) => (n / 1024).toFixed(1);
  for (const [name, r] of [["cache off", off], ["cache on", on]] as const) {
    console.log(
      `${name.padEnd(9)}: engine ${(r.engineMs / 1000).toFixed(2)} s per image, wall ${(r.wallMs / 1000).toFixed(2)} s, CPU ${(r.cpuMs / 1000).toFixed(2)} s, ${r.tokens} tokens through the transformer, ` +
        `${r.cachedSteps} cached steps, ${r.width}x${r.height}; ${kiB(r.bytesSentPerStep)} KiB sent + ${kiB(r.bytesReceivedPerStep)} KiB received per step (${r.calls} steps); ` +
        `ms per step: ${Object.entries(r.msPerStep).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`,
    );
  }
  const ratios = { engine: off.engineMs / on.engineMs, wall: off.wallMs / on.wallMs, cpu: off.cpuMs / on.cpuMs, tokens: off.tokens / on.tokens };
  console.log(`ratio    : engine ${ratios.engine.toFixed(2)}x, wall ${ratios.wall.toFixed(2)}x, CPU ${ratios.cpu.toFixed(2)}x, tokens ${ratios.tokens.toFixed(2)}x (the reference's authors report about 2x on an A800)`);
  const T = Number(opt["project-steps"]);
  const { uncached } = off.msPerStep;
  const { refresh, cached } = on.msPerStep;
  let projected: BenchResult["projected"];
  if (T > 0 && uncached !== undefined && refresh !== undefined && cached !== undefined) {
    const schedule = mlCacheRefreshSteps(T);
    const refreshes = schedule.filter((r) => r).length;
    projected = { steps: T, offMs: T * uncached, onMs: refreshes * refresh + (T - refreshes) * cached, ratio: 0 };
    projected.ratio = projected.offMs / projected.onMs;
    console.log(
      `projected: ${T} steps from the per-step means: engine ${(projected.offMs / 1000).toFixed(1)} s off, ${(projected.onMs / 1000).toFixed(1)} s on ` +
        `(${refreshes} refresh + ${T - refreshes} cached steps), ${projected.ratio.toFixed(2)}x`,
    );
  }
  if (opt.json) {
    const kv = cfg.nKvHeads * (cfg.dModel / cfg.nHeads);
    const out: BenchResult = {
      task: TASK,
      size: `${W}x${H}`,
      steps: STEPS,
      runs: RUNS,
      transformer: { dModel: cfg.dModel, nLayers: cfg.nLayers, nHeads: cfg.nHeads, mlpHidden: cfg.mlpHidden, scaled: tmp !== undefined },
      stateBytesPerPosition: 4 * (2 * cfg.nLayers * kv + CODEBOOK_SIZE),
      off,
      on,
      ratios,
      projected,
    };
    await writeFile(opt.json, JSON.stringify(out, null, 2) + "\n");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
