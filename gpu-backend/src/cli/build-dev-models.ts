// Generates the tiny dev models into model-repository/ (never committed; .gitignore ignores the version
// directories). Called by the vitest globalSetup (test/setup/dev-models.ts) and `npm run build:dev-models`.
//
//   model-repository/vq_encoder/1/model.onnx          tiny VQ-GAN encoder, real 8192-entry codebook
//   model-repository/vq_decoder/1/model.onnx          its decoder
//   model-repository/dimoo_transformer/1/model.onnx   tiny transformer with the real token-id layout
//   model-repository/dimoo_transformer_cached/1/model.onnx  the same weights as the stateful ML-Cache model
//   model-repository/dimoo_transformer/tokenizer.json dev tokenizer, special tokens at their real ids
//
// Both transformers reference one fp32 `model.safetensors` in place (as production references the
// checkpoint's shards), hard-linked into both version directories, so the weights are on disk once.
//
// Idempotent: each part writes a stamp (`1/dev-model.stamp.json`) holding a hash of the generator's source
// files and the sizes of the files it wrote; a part is rebuilt only when that hash changes or a file is
// missing. Deterministic: seeded weights and a deterministic protobuf writer give byte-identical files.
// Concurrent callers (several vitest processes in one tree) serialise on a lock directory in .cache/,
// and files are generated in a temporary directory and renamed into place, so a reader never sees a
// half-written model. Files in a version directory that the generator does not own (e.g. a TensorRT
// model.plan) are left alone.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../engine/contract";
import { committedRepositoryFiles } from "../builder/repository/model-config";
import { loadDevTokenizer, loadTransformerModule, missingTransformerExports, TOKENIZER_FILE, TRANSFORMER_DIR } from "../builder/repository/optional-modules";
import { devVqConfig } from "../builder/vqgan/config";
import { buildVqDecoderGraph, buildVqEncoderGraph } from "../builder/vqgan/graph";
import { seededVqWeights } from "../builder/vqgan/weights";

/** Bump to force regeneration without a source change. */
export const DEV_MODELS_VERSION = "1";
export const DEV_VQ_SEED = 1;
export const DEV_TRANSFORMER_SEED = 1;

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "../../..");
export const DEV_MODEL_REPOSITORY = join(REPO_ROOT, "model-repository");
const SRC = resolve(HERE, "..");
const STAMP = "dev-model.stamp.json";

export type Log = (msg: string) => void;
const defaultLog: Log = (m) => console.log(`[dev-models] ${m}`);

export interface DevModelsOptions {
  /** Repository directory (default: <repo>/model-repository). */
  root?: string;
  /** Rebuild even when the stamps match. */
  force?: boolean;
  log?: Log;
  /** Directory of the lock (default: <repo>/.cache). */
  lockDir?: string;
  /** Rewrite the committed config files too (after a contract change). */
  writeConfigs?: boolean;
}

export interface DevPartReport {
  part: "vq" | "transformer" | "tokenizer";
  status: "built" | "current" | "skipped";
  files: Record<string, number>;
  ms: number;
  reason?: string;
}

// ---- source hashing --------------------------------------------------------------------------------

async function listTs(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const s = await stat(path);
  if (s.isFile()) return [path];
  const entries = await readdir(path, { recursive: true });
  return entries.filter((e) => e.endsWith(".ts")).map((e) => join(path, e)).sort();
}

async function hashSources(paths: string[], salt: string): Promise<string> {
  const h = createHash("sha256").update(`${DEV_MODELS_VERSION}\0${salt}\0`);
  for (const p of paths) for (const f of await listTs(p)) h.update(relative(SRC, f)).update("\0").update(await readFile(f)).update("\0");
  return h.digest("hex").slice(0, 32);
}

const COMMON_SOURCES = [
  join(SRC, "builder/onnx"),
  join(SRC, "engine/contract.ts"),
  join(SRC, "builder/safetensors.ts"),
  join(SRC, "builder/seeded-random.ts"),
  join(SRC, "lib/numeric.ts"),
  join(SRC, "model/tokens.ts"),
  fileURLToPath(import.meta.url),
];
const VQ_SOURCES = [join(SRC, "builder/vqgan"), ...COMMON_SOURCES];

// ---- lock ------------------------------------------------------------------------------------------

async function withLock<T>(lockDir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  await mkdir(lockDir, { recursive: true });
  const lock = join(lockDir, "dev-models.lock");
  const started = Date.now();
  let announced = false;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, "owner"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let stale = false;
      try {
        const pid = Number(await readFile(join(lock, "owner"), "utf8"));
        if (pid && pid !== process.pid) {
          try {
            process.kill(pid, 0);
          } catch {
            stale = true; // owner is gone
          }
        }
        if (Date.now() - (await stat(lock)).mtimeMs > 5 * 60_000) stale = true;
      } catch {
        /* owner file not written yet */
      }
      if (stale) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (!announced) log("waiting for another process that is generating the dev models");
      announced = true;
      if (Date.now() - started > 180_000) throw new Error(`timed out waiting for ${lock}; remove it if no generator is running`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

// ---- parts -----------------------------------------------------------------------------------------

interface Stamp {
  hash: string;
  files: Record<string, number>;
}

async function readStamp(dir: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await readFile(join(dir, STAMP), "utf8")) as Stamp;
  } catch {
    return null;
  }
}

async function current(dir: string, hash: string): Promise<Stamp | null> {
  const s = await readStamp(dir);
  if (!s || s.hash !== hash) return null;
  for (const [f, size] of Object.entries(s.files)) {
    const p = join(dir, f);
    if (!existsSync(p) || (await stat(p)).size !== size) return null;
  }
  return s;
}

/**
 * Generates into a temporary sibling of `dir`, then renames each file into `dir` and writes the stamp
 * last. Files the previous stamp listed but this build did not produce are removed.
 */
async function publish(dir: string, hash: string, generate: (tmp: string) => Promise<void>): Promise<Record<string, number>> {
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await generate(tmp);
    await mkdir(dir, { recursive: true });
    const old = await readStamp(dir);
    const files: Record<string, number> = {};
    for (const f of (await readdir(tmp)).sort()) {
      files[f] = (await stat(join(tmp, f))).size;
      await rename(join(tmp, f), join(dir, f));
    }
    for (const f of Object.keys(old?.files ?? {})) if (!(f in files)) await rm(join(dir, f), { force: true });
    await writeFile(join(dir, STAMP), JSON.stringify({ hash, files }, null, 2) + "\n");
    return files;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function buildVq(root: string, force: boolean): Promise<DevPartReport> {
  const t0 = performance.now();
  const hash = await hashSources(VQ_SOURCES, `vq seed=${DEV_VQ_SEED}`);
  const encDir = join(root, VQ_ENCODER_MODEL, "1");
  const decDir = join(root, VQ_DECODER_MODEL, "1");
  const enc = force ? null : await current(encDir, hash);
  const dec = force ? null : await current(decDir, hash);
  if (enc && dec) return { part: "vq", status: "current", files: prefixed({ [VQ_ENCODER_MODEL]: enc.files, [VQ_DECODER_MODEL]: dec.files }), ms: performance.now() - t0 };
  const cfg = devVqConfig();
  const weights = seededVqWeights(cfg, DEV_VQ_SEED);
  const save = { externalThresholdBytes: 1 << 20, producer: "dimoo-dev-models" };
  const e = await publish(encDir, hash, async (tmp) => void (await buildVqEncoderGraph(cfg, weights).save(join(tmp, "model.onnx"), save)));
  const d = await publish(decDir, hash, async (tmp) => void (await buildVqDecoderGraph(cfg, weights).save(join(tmp, "model.onnx"), save)));
  return { part: "vq", status: "built", files: prefixed({ [VQ_ENCODER_MODEL]: e, [VQ_DECODER_MODEL]: d }), ms: performance.now() - t0 };
}

function prefixed(byModel: Record<string, Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [m, files] of Object.entries(byModel)) for (const [f, n] of Object.entries(files)) out[`${m}/1/${f}`] = n;
  return out;
}

async function buildTransformer(root: string, force: boolean): Promise<DevPartReport> {
  const t0 = performance.now();
  const missing = await missingTransformerExports();
  if (missing.length)
    return {
      part: "transformer",
      status: "skipped",
      files: {},
      ms: performance.now() - t0,
      reason: `${relative(REPO_ROOT, TRANSFORMER_DIR)}/ does not export ${missing.join(", ")} yet`,
    };
  const hash = await hashSources([TRANSFORMER_DIR, ...COMMON_SOURCES], `transformer seed=${DEV_TRANSFORMER_SEED}`);
  const dir = join(root, TRANSFORMER_MODEL, "1");
  const cachedDir = join(root, TRANSFORMER_CACHED_MODEL, "1");
  const cur = force ? null : await current(dir, hash);
  const curCached = force ? null : await current(cachedDir, hash);
  if (cur && curCached)
    return { part: "transformer", status: "current", files: prefixed({ [TRANSFORMER_MODEL]: cur.files, [TRANSFORMER_CACHED_MODEL]: curCached.files }), ms: performance.now() - t0 };
  const mod = await loadTransformerModule();
  if (!mod) throw new Error(`${relative(REPO_ROOT, TRANSFORMER_DIR)}: transformer builder exports could not be loaded`);
  const config = mod.devTransformerConfig();
  // Beside the repository's model directories, so the hard links the model builders make stay on one file system.
  const checkpoint = join(root, `.dev-transformer-checkpoint-${process.pid}`);
  try {
    await mod.writeLladaCheckpoint(checkpoint, config, mod.seededLladaWeights(config, DEV_TRANSFORMER_SEED), { dtype: "F32" });
    const weights = await mod.openLladaCheckpoint(checkpoint, { config });
    const files = await publish(dir, hash, async (tmp) => void (await mod.buildTransformerModel({ config, weights, dtype: "fp32", outDir: tmp })));
    const cachedFiles = await publish(cachedDir, hash, async (tmp) => void (await mod.buildCachedTransformerModel({ config, weights, dtype: "fp32", outDir: tmp })));
    return { part: "transformer", status: "built", files: prefixed({ [TRANSFORMER_MODEL]: files, [TRANSFORMER_CACHED_MODEL]: cachedFiles }), ms: performance.now() - t0 };
  } finally {
    await rm(checkpoint, { recursive: true, force: true });
  }
}

async function buildTokenizer(root: string, force: boolean): Promise<DevPartReport> {
  const t0 = performance.now();
  const make = await loadDevTokenizer();
  if (!make)
    return { part: "tokenizer", status: "skipped", files: {}, ms: performance.now() - t0, reason: `${relative(REPO_ROOT, TOKENIZER_FILE)} does not export devTokenizerJson yet` };
  const file = join(root, TRANSFORMER_MODEL, "tokenizer.json");
  const text = JSON.stringify(make()) + "\n";
  const name = `${TRANSFORMER_MODEL}/tokenizer.json`;
  if (!force && existsSync(file) && (await readFile(file, "utf8")) === text)
    return { part: "tokenizer", status: "current", files: { [name]: Buffer.byteLength(text) }, ms: performance.now() - t0 };
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
  return { part: "tokenizer", status: "built", files: { [name]: Buffer.byteLength(text) }, ms: performance.now() - t0 };
}

/**
 * Writes the committed repository files (configs, warmup data) where they are missing, or all of them
 * with `overwrite` (`npm run build:dev-models -- --write-configs` after a contract change). The test
 * suite checks the committed copies are current, so a stale one is reported rather than silently fixed.
 */
export async function writeRepositoryFiles(root: string, overwrite = false): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, content] of Object.entries(committedRepositoryFiles())) {
    const p = join(root, rel);
    if (!overwrite && existsSync(p)) continue;
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
    written.push(rel);
  }
  return written;
}

/** Generates whatever is missing or stale; returns one report per part. */
export async function buildDevModels(opts: DevModelsOptions = {}): Promise<DevPartReport[]> {
  const root = opts.root ?? DEV_MODEL_REPOSITORY;
  const log = opts.log ?? defaultLog;
  return withLock(opts.lockDir ?? join(REPO_ROOT, ".cache"), log, async () => {
    await mkdir(root, { recursive: true });
    const written = await writeRepositoryFiles(root, !!opts.writeConfigs);
    if (written.length) log(`wrote ${written.join(", ")}`);
    const reports = [await buildVq(root, !!opts.force), await buildTransformer(root, !!opts.force), await buildTokenizer(root, !!opts.force)];
    for (const r of reports) {
      const bytes = Object.values(r.files).reduce((a, b) => a + b, 0);
      if (r.status === "skipped") log(`${r.part}: skipped: ${r.reason}`);
      else if (r.status === "built") log(`${r.part}: generated ${(bytes / 1e6).toFixed(2)} MB in ${Math.round(r.ms)} ms (${Object.keys(r.files).join(", ")})`);
    }
    return reports;
  });
}

/** Makes sure the dev models exist and are current (vitest globalSetup). */
export async function ensureDevModels(opts: DevModelsOptions = {}): Promise<void> {
  await buildDevModels(opts);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const force = process.argv.includes("--force");
  const writeConfigs = process.argv.includes("--write-configs");
  const t0 = performance.now();
  buildDevModels({ force, writeConfigs })
    .then((reports) => {
      const total = reports.reduce((a, r) => a + Object.values(r.files).reduce((x, y) => x + y, 0), 0);
      defaultLog(`done in ${Math.round(performance.now() - t0)} ms; ${(total / 1e6).toFixed(2)} MB in ${relative(process.cwd(), DEV_MODEL_REPOSITORY) || "."}`);
    })
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
