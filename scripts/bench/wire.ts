// Bytes on the wire per step and the ML-Cache side by side. The bytes: the worst steps of a guided 1024x1024
// image through the real packers and the embedded backend (step-bytes.ts, the same measurement the wire test
// holds to 128 KB). The ML-Cache: scripts/bench-ml-cache.ts as a subprocess (its `--json FILE` output), the
// cache off and on interleaved at 512x512 on a dev transformer scaled until its steps are compute-bound
// (docs/ml-cache.md says why the tiny dev model is the wrong model for a speed ratio), with its projection
// to a 64-step image.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEV_MODEL_REPOSITORY, ensureDevModels } from "../../gpu-backend/src/cli/build-dev-models";
import { start as startEmbedded } from "../../gpu-backend/src/embedded/server";
import type { BenchResult } from "../bench-ml-cache";
import { ROOT } from "../start-stack";
import { isMain, runAlone, type BenchSection } from "./section";
import { fmt, kib, ratio, table, verdict } from "./stats";
import { measureWorstStepBytes, WIRE_BUDGET_BYTES, wireCountingEngine, type WorstStepBytes } from "./step-bytes";

const SCRIPT = join(ROOT, "scripts", "bench-ml-cache.ts");

export interface CacheMode {
  engineMs: number;
  wallMs: number;
  tokens: number;
  cachedSteps: number;
  bytesSentPerStep: number;
  bytesReceivedPerStep: number;
}

export interface MlCacheResult {
  off: CacheMode;
  on: CacheMode;
  projected?: BenchResult["projected"];
  transformer?: BenchResult["transformer"];
}

function pickMode(x: unknown): CacheMode | undefined {
  if (!x || typeof x !== "object") return undefined;
  const o = x as Record<string, unknown>;
  const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : NaN);
  if (!("bytesSentPerStep" in o) && !("engineMs" in o)) return undefined;
  return { engineMs: n("engineMs"), wallMs: n("wallMs"), tokens: n("tokens"), cachedSteps: n("cachedSteps"), bytesSentPerStep: n("bytesSentPerStep"), bytesReceivedPerStep: n("bytesReceivedPerStep") };
}

/** The two modes from the script's JSON, whatever it nests them in ({off, on} or {modes: {off, on}}). */
export function parseMlCacheJson(json: unknown): MlCacheResult | undefined {
  const j = json as Partial<BenchResult> | undefined;
  const off = pickMode(j?.off), on = pickMode(j?.on);
  if (!off || !on) return undefined;
  return { off, on, projected: j?.projected, transformer: j?.transformer };
}

function runScript(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out }));
  });
}

export async function runMlCacheBench(args: string[]): Promise<MlCacheResult> {
  const dir = await mkdtemp(join(tmpdir(), "dimoo-mlcache-"));
  try {
    const file = join(dir, "out.json");
    const r = await runScript([...args, "--json", file]);
    if (r.code !== 0) throw new Error(`bench-ml-cache.ts failed (${r.code}): ${r.out.slice(-800)}`);
    const parsed = parseMlCacheJson(JSON.parse(await readFile(file, "utf8")));
    if (!parsed) throw new Error(`bench-ml-cache.ts wrote JSON of an unknown shape: ${(await readFile(file, "utf8")).slice(0, 400)}`);
    return parsed;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function worstSteps(): Promise<WorstStepBytes> {
  await ensureDevModels({ log: () => {} });
  const backend = await startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0, host: "127.0.0.1" });
  const { engine, wire } = wireCountingEngine(backend.url);
  try {
    return await measureWorstStepBytes(engine, wire);
  } finally {
    engine.client.close();
    await backend.close();
  }
}

/** bf16 guided codebook logits of a 1024x1024 step: what would cross the wire if the engine did not sample. */
const LOGIT_BYTES_1024 = 2 * 4096 * 8192 * 2;

export const wire: BenchSection = {
  id: "wire",
  title: "2. Wire bytes per step and the ML-Cache side by side (dev models)",
  item: "2 (bytes per step, cache off and on) and the ML-Cache comparison",
  command: "npx tsx scripts/bench/wire.ts (runs npx tsx scripts/bench-ml-cache.ts --size 1024x1024 --steps 10 --runs 1 --width 256 --layers 4 --json FILE)",
  async run(ctx) {
    const steps = 10;
    const size = "1024x1024";
    const args = ["--size", size, "--steps", String(steps), "--runs", "1", "--width", "256", "--layers", "4"];
    ctx.log("wire: the worst 1024x1024 steps through the packers and the embedded backend");
    const w = await worstSteps();
    ctx.log(`wire: scripts/bench-ml-cache.ts ${args.join(" ")}`);
    const r = await runMlCacheBench(args);
    const total = (b: { sent: number; received: number }) => b.sent + b.received;
    const worst = Math.max(total(w.uncached), total(w.refresh), total(w.cached));
    const row = (name: string, m: CacheMode) => [name, kib(m.bytesSentPerStep), kib(m.bytesReceivedPerStep), `**${kib(m.bytesSentPerStep + m.bytesReceivedPerStep)}**`, fmt(m.engineMs / 1000), fmt(m.wallMs / 1000), m.tokens, m.cachedSteps];
    const t = r.transformer;
    return {
      markdown: [
        "Bytes are the tensor data of a transformer call per request, request + response (what the gRPC messages carry, less a few hundred bytes of framing), measured at the Triton client.",
        "",
        `**The worst steps of a guided 1024x1024 image** (scripts/bench/step-bytes.ts, the same measurement test/integration/triton/wire-bytes.test.ts holds to the budget), against the goal of ≤ 128 KB (128,000 B) each and ${fmt(LOGIT_BYTES_1024 / 1e6)} MB of bf16 guided codebook logits:`,
        "",
        ...table(
          ["step", "sent", "received", "total", "goal"],
          [
            [`cache off, step 0 (all 4,096 cells targets, L = ${w.uncached.length})`, `${w.uncached.sent} B`, `${w.uncached.received} B`, `**${total(w.uncached)} B**`, verdict(total(w.uncached), WIRE_BUDGET_BYTES)],
            [`cache on, refresh step choosing the next recompute set (L = ${w.refresh.length})`, `${w.refresh.sent} B`, `${w.refresh.received} B`, `**${total(w.refresh)} B**`, verdict(total(w.refresh), WIRE_BUDGET_BYTES)],
            [`cache on, cached step (P = ${w.cached.recomputeLength}) choosing the next set`, `${w.cached.sent} B`, `${w.cached.received} B`, `**${total(w.cached)} B**`, verdict(total(w.cached), WIRE_BUDGET_BYTES)],
          ],
        ),
        "",
        `**The ML-Cache side by side** (scripts/bench-ml-cache.ts, ${size}, guidance 4, ${steps} steps, one run per mode, interleaved, on a dev transformer scaled to width ${t?.dModel ?? "?"} and ${t?.nLayers ?? "?"} layers so that its steps are compute-bound as the real model's are; seeded weights, onnxruntime on the CPU cores). At ${steps} steps the schedule's 30% warm-up leaves few cached steps, so the measured ratio understates a 64-step image's; the projection uses the mean time of each kind of step measured here. Bytes are the mean per step over the image.`,
        "",
        ...table(["mode", "sent / step (mean)", "received / step", "total / step", "engine s / image", "wall s / image", "tokens through the transformer", "cached steps"], [row("cache off", r.off), row("cache on", r.on)]),
        "",
        `Ratios off / on, same run: engine ${ratio(r.off.engineMs, r.on.engineMs)}, wall ${ratio(r.off.wallMs, r.on.wallMs)}, tokens ${ratio(r.off.tokens, r.on.tokens)}.` +
          (r.projected ? ` Projected to a ${r.projected.steps}-step image from the per-step means: ${fmt(r.projected.offMs / 1000)} s off, ${fmt(r.projected.onMs / 1000)} s on, **${fmt(r.projected.ratio)}x** (the authors report about 2x on an A800).` : ""),
      ],
      headlines: [
        { figure: "wire bytes of the worst guided 1024x1024 step, cache off / on (request + response)", value: `${total(w.uncached)} B / ${Math.max(total(w.refresh), total(w.cached))} B`, goal: "≤ 128,000 B", met: worst <= WIRE_BUDGET_BYTES },
        {
          figure: `ML-Cache off / on, scaled dev transformer (${size}, ${steps} steps): tokens, engine time${r.projected ? `, projected ${r.projected.steps}-step engine time` : ""}`,
          value: `${ratio(r.off.tokens, r.on.tokens)}, ${ratio(r.off.engineMs, r.on.engineMs)}${r.projected ? `, ${fmt(r.projected.ratio)}x` : ""}`,
          goal: "reference: ~2x on a GPU (64 steps)",
        },
      ],
      data: { worstSteps: w, mlCache: r },
    };
  },
};

if (isMain(import.meta.url)) await runAlone(wire);
