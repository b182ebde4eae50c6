// Bytes on the wire per step and the ML-Cache side by side: runs scripts/bench-ml-cache.ts (owned by the
// ML-Cache work, left as it is) as a subprocess with small settings, the cache off and on interleaved on
// the dev models at 1024x1024 with guidance, and shows the tensor bytes each transformer step sends and
// receives against the 128 KB goal. It reads the script's `--json FILE` output (per mode: engineMs, wallMs,
// tokens, cachedSteps, bytesSentPerStep, bytesReceivedPerStep) when the script has that option, else its
// printed summary.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { devTransformerConfig } from "../../gpu-backend/src/builder/llada/config";
import { buildTransformerGraph } from "../../gpu-backend/src/builder/llada/graph";
import { measureT2iStep, t2iStepLayout } from "../../gpu-backend/src/builder/llada/measure-step";
import { memoryResolver } from "../../gpu-backend/src/builder/llada/model-file";
import { seededLladaWeights } from "../../gpu-backend/src/builder/llada/weights";
import { ROOT } from "../start-stack";
import { isMain, runAlone, type BenchSection } from "./section";
import { fmt, kib, ratio, table, verdict } from "./stats";

export const WIRE_GOAL_BYTES = 128 * 1024;
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
  source: "json" | "stdout";
}

function pickMode(x: unknown): CacheMode | undefined {
  if (!x || typeof x !== "object") return undefined;
  const o = x as Record<string, unknown>;
  const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : NaN);
  if (!("bytesSentPerStep" in o) && !("engineMs" in o)) return undefined;
  return { engineMs: n("engineMs"), wallMs: n("wallMs"), tokens: n("tokens"), cachedSteps: n("cachedSteps"), bytesSentPerStep: n("bytesSentPerStep"), bytesReceivedPerStep: n("bytesReceivedPerStep") };
}

/** The two modes from the script's JSON, whatever it nests them in ({off, on} or {modes: {off, on}}). */
export function parseMlCacheJson(json: unknown): Pick<MlCacheResult, "off" | "on"> | undefined {
  const j = json as Record<string, unknown>;
  for (const holder of [j, j?.modes, j?.results] as unknown[]) {
    const h = holder as Record<string, unknown> | undefined;
    if (!h) continue;
    const off = pickMode(h.off ?? h.cacheOff ?? h["cache off"]);
    const on = pickMode(h.on ?? h.cacheOn ?? h["cache on"]);
    if (off && on) return { off, on };
  }
  return undefined;
}

/** The two modes from the script's printed summary (its format before `--json`). */
export function parseMlCacheStdout(text: string): Pick<MlCacheResult, "off" | "on"> | undefined {
  const mode = (name: string): CacheMode | undefined => {
    const m = new RegExp(`${name}\\s*: engine ([\\d.]+) s per image, wall ([\\d.]+) s, (\\d+) tokens through the transformer, (\\d+) cached steps`).exec(text);
    if (!m) return undefined;
    return { engineMs: Number(m[1]) * 1000, wallMs: Number(m[2]) * 1000, tokens: Number(m[3]), cachedSteps: Number(m[4]), bytesSentPerStep: NaN, bytesReceivedPerStep: NaN };
  };
  const off = mode("cache off"), on = mode("cache on");
  if (!off || !on) return undefined;
  const wire = (model: string) => new RegExp(`wire ${model}: ([\\d.]+) KiB sent \\+ ([\\d.]+) KiB received per step`).exec(text);
  const plain = wire("dimoo_transformer"), cachedWire = wire("dimoo_transformer_cached");
  if (plain) [off.bytesSentPerStep, off.bytesReceivedPerStep] = [Number(plain[1]) * 1024, Number(plain[2]) * 1024];
  if (cachedWire) [on.bytesSentPerStep, on.bytesReceivedPerStep] = [Number(cachedWire[1]) * 1024, Number(cachedWire[2]) * 1024];
  return { off, on };
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
  const source = await readFile(SCRIPT, "utf8");
  if (/\bjson\s*:\s*\{/.test(source)) {
    const dir = await mkdtemp(join(tmpdir(), "dimoo-mlcache-"));
    try {
      const file = join(dir, "out.json");
      const r = await runScript([...args, "--json", file]);
      if (r.code !== 0) throw new Error(`bench-ml-cache.ts failed (${r.code}): ${r.out.slice(-800)}`);
      const parsed = parseMlCacheJson(JSON.parse(await readFile(file, "utf8")));
      if (parsed) return { ...parsed, source: "json" };
      const fromText = parseMlCacheStdout(r.out);
      if (fromText) return { ...fromText, source: "stdout" };
      throw new Error(`bench-ml-cache.ts wrote JSON of an unknown shape: ${(await readFile(file, "utf8")).slice(0, 400)}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const r = await runScript(args);
  if (r.code !== 0) throw new Error(`bench-ml-cache.ts failed (${r.code}): ${r.out.slice(-800)}`);
  const parsed = parseMlCacheStdout(r.out);
  if (!parsed) throw new Error(`could not read bench-ml-cache.ts's output: ${r.out.slice(-800)}`);
  return { ...parsed, source: "stdout" };
}

/**
 * The first (largest) step of a guided 1024x1024 image through the stateless contract: every one of the
 * 4,096 cells a target. One call of the dev transformer (built in memory) with the tensors a Triton request
 * carries (gpu-backend/src/builder/llada/measure-step.ts), bytes in and out.
 */
async function firstStepBytes1024(): Promise<{ sent: number; received: number; logits: number }> {
  const cfg = devTransformerConfig();
  const session = await ort.InferenceSession.create(buildTransformerGraph(cfg, memoryResolver(seededLladaWeights(cfg)), { weightDtype: "FLOAT" }).toBytes());
  const m = await measureT2iStep(session, t2iStepLayout(), 1);
  await session.release();
  return { sent: m.bytesIn, received: m.bytesOut, logits: m.slicedLogitBytes };
}

export const wire: BenchSection = {
  id: "wire",
  title: "2. Wire bytes per step (measured only) and the ML-Cache side by side (dev models)",
  item: "2 (bytes, measured only) and the ML-Cache comparison",
  command: "npx tsx scripts/bench/wire.ts (runs npx tsx scripts/bench-ml-cache.ts --size 512x512 --steps 10 --runs 1)",
  async run(ctx) {
    const steps = 10;
    const size = "512x512";
    const args = ["--size", size, "--steps", String(steps), "--runs", "1"];
    ctx.log("wire: the first 1024x1024 step through the dev transformer");
    const first = await firstStepBytes1024();
    ctx.log(`wire: scripts/bench-ml-cache.ts ${args.join(" ")}`);
    const r = await runMlCacheBench(args);
    const row = (name: string, m: CacheMode) => {
      const total = m.bytesSentPerStep + m.bytesReceivedPerStep;
      return [name, kib(m.bytesSentPerStep), kib(m.bytesReceivedPerStep), `**${kib(total)}**`, fmt(m.engineMs / 1000), fmt(m.wallMs / 1000), m.tokens, m.cachedSteps];
    };
    return {
      markdown: [
        "Bytes are the tensor data of a transformer call, request + response (what the gRPC messages carry, less framing). The wire dtypes are being narrowed in the engine contract right now (item 2, another change): these tables show what the checked-out contract sends.",
        "",
        `**The largest step of a guided 1024x1024 image** (step 0: all 4,096 cells are targets; later steps target only the cells still masked), one call of the dev transformer: sent ${kib(first.sent)}, received ${kib(first.received)}, **total ${kib(first.sent + first.received)}** against the goal of ≤ 128 KiB ${verdict(first.sent + first.received, WIRE_GOAL_BYTES)}, and against ${fmt(first.logits / 1e6)} MB of bf16 guided codebook logits (${fmt(first.logits / (first.sent + first.received))}x).`,
        "",
        `**The ML-Cache side by side** (scripts/bench-ml-cache.ts, ${size}, guidance 4, ${steps} steps, one run per mode, interleaved, on the dev models: tiny and random, onnxruntime on the 2 CPU cores; a 1024x1024 dev-model step takes several seconds there, too long for this suite's budget). Bytes are the mean per step over the image, read from ${r.source === "json" ? "the script's --json output" : "the script's printed summary (its --json option is not there yet)"}. The ML-Cache schedule keeps the first 30% of steps full, so at ${steps} steps few are cached and the ratio understates the 64-step one; on CPU the cached model's state copies cost more than they save (docs/ml-cache.md has the 64-step measurement).`,
        "",
        ...table(["mode", "sent / step (mean, 512x512)", "received / step", "total / step", "engine s / image", "wall s / image", "tokens through the transformer", "cached steps"], [row("cache off", r.off), row("cache on", r.on)]),
        "",
        `Ratios off / on, same run: engine ${ratio(r.off.engineMs, r.on.engineMs)}, wall ${ratio(r.off.wallMs, r.on.wallMs)}, tokens ${ratio(r.off.tokens, r.on.tokens)}.`,
      ],
      headlines: [
        { figure: "wire bytes of the largest 1024x1024 guided step (request + response)", value: kib(first.sent + first.received), goal: "≤ 128 KiB", met: first.sent + first.received <= WIRE_GOAL_BYTES },
        { figure: `ML-Cache off / on on the dev models (${size}, ${steps} steps): tokens, engine time`, value: `${ratio(r.off.tokens, r.on.tokens)}, ${ratio(r.off.engineMs, r.on.engineMs)}`, goal: "reference: ~2x on a GPU (64 steps)" },
      ],
      data: { firstStep1024: first, mlCache: r },
    };
  },
};

if (isMain(import.meta.url)) await runAlone(wire);
