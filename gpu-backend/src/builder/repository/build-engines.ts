// The production build: Hugging Face Lumina-DiMOO checkpoint -> ONNX graphs -> trtexec -> a Triton model
// repository of tensorrt_plan models. `npm run build:engines -- --checkpoint <dir> --out <dir>` drives it
// (gpu-backend/src/cli/build-engines.ts); model-repository/README.md documents it.
//
//   <checkpoint>/config.json, *.safetensors (+ model.safetensors.index.json), tokenizer.json   transformer
//   <checkpoint>/vqvae/config.json, vqvae/diffusion_pytorch_model.safetensors                   VQ-GAN
//
//   <onnx dir>/<model>/model.onnx (+ model.onnx.data, or links to the checkpoint shards)        intermediate
//   <onnx dir>/build-engines.sh                                                                the trtexec commands
//   <out>/<model>/config.pbtxt, <out>/<model>/1/model.plan, <out>/<model>/build-info.json      the repository
//   <out>/dimoo_transformer/warmup/seq_lens_<L>, <out>/dimoo_transformer/tokenizer.json
//
// Every step up to trtexec runs without a GPU; without trtexec (or with --skip-trtexec) the build stops
// there, after writing the ONNX graphs, the configs and the script of trtexec commands.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../../engine/contract";
import type { LladaConfig } from "../llada/config";
import { buildVqDecoderGraph, buildVqEncoderGraph } from "../vqgan/graph";
import { readVqCheckpoint, vqWeightsFile, VQ_WEIGHTS_FILE } from "../vqgan/weights";
import { checkConfigAgainstOnnx, MODEL_NAMES, renderTrtModelConfig, type ModelName } from "./model-config";
import { readOnnxIO } from "./onnx-io";
import { loadTransformerModule, type TransformerBuilder } from "./optional-modules";
import { parsePbtxtFields } from "../../triton/pbtxt";
import {
  cachedStateSize,
  DIMOO_8B_DIMS,
  estimateTransformerMemory,
  TRANSFORMER_CACHED_LIMITS,
  estimateVqMemory,
  formatBytes,
  TRANSFORMER_BUCKETS,
  transformerProfiles,
  VQ_DECODER_PROFILE_DEFAULTS,
  VQ_ENCODER_PROFILE_DEFAULTS,
  type CachedTransformerLimits,
  type TransformerDims,
  type VqProfileOptions,
} from "../../engine/profiles";
import { findTrtexec, runTrtexec, shellCommand, trtexecArgs, TRTEXEC_FALLBACKS } from "./trtexec";

export class BuildError extends Error {
  constructor(
    message: string,
    /** Process exit code: 2 bad input (missing files, arguments), 3 trtexec missing, 4 trtexec failed. */
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface BuildEnginesOptions {
  checkpoint: string;
  out: string;
  /** Where the ONNX graphs go (default: `<out>-onnx`, beside the repository, never inside it). */
  onnxDir?: string;
  models?: ModelName[];
  /** Stop before trtexec on purpose (exit 0); without it a missing trtexec is an error (exit 3). */
  skipTrtexec?: boolean;
  trtexec?: string;
  vqEncoder?: VqProfileOptions;
  vqDecoder?: VqProfileOptions;
  /** Names of the TRANSFORMER_BUCKETS that become optimization profiles (default all). */
  transformerBuckets?: string[];
  /** Overrides of the cached transformer's limits (TRANSFORMER_CACHED_LIMITS), e.g. more sequences on a larger GPU. */
  cachedLimits?: Partial<CachedTransformerLimits>;
  workspaceMiB?: number;
  versionCompatible?: boolean;
  /** Refuse to write into this directory (the dev repository). */
  devRepository?: string;
  /** Environment and install directories searched for trtexec (tests make them hermetic). */
  env?: NodeJS.ProcessEnv;
  trtexecFallbacks?: readonly string[];
  log?: (msg: string) => void;
  /** Loads the transformer graph builder (default: finds gpu-backend/src/builder/llada). */
  loadTransformer?: () => Promise<TransformerBuilder | null>;
}

export interface BuiltModel {
  model: ModelName;
  onnx: string;
  plan: string;
  config: string;
  args: string[];
  command: string;
}

export interface BuildEnginesResult {
  models: BuiltModel[];
  onnxDir: string;
  script: string;
  stoppedBeforeTrtexec: boolean;
  trtexec?: string;
  tensorrtVersion?: string;
}

// ---- checkpoint checks -----------------------------------------------------------------------------

/** Paths (relative to the checkpoint) that the requested models need and that are missing. */
export async function missingCheckpointFiles(dir: string, models: readonly ModelName[]): Promise<string[]> {
  if (!existsSync(dir)) return ["(the checkpoint directory itself)"];
  const missing: string[] = [];
  if (models.some(isTransformer)) {
    for (const f of ["config.json", "tokenizer.json"]) if (!existsSync(join(dir, f))) missing.push(f);
    const shards = (await readdir(dir)).filter((f) => f.endsWith(".safetensors"));
    const index = join(dir, "model.safetensors.index.json");
    if (existsSync(index)) {
      const map = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {};
      for (const f of new Set(Object.values(map))) if (!existsSync(join(dir, f))) missing.push(f);
    } else if (shards.length === 0) missing.push("*.safetensors (transformer weights)");
  }
  if (models.includes(VQ_ENCODER_MODEL) || models.includes(VQ_DECODER_MODEL)) {
    if (!existsSync(join(dir, "vqvae/config.json"))) missing.push("vqvae/config.json");
    if (!vqWeightsFile(join(dir, "vqvae"))) missing.push(`vqvae/${VQ_WEIGHTS_FILE}`);
  }
  return missing;
}

const TRANSFORMERS: readonly ModelName[] = [TRANSFORMER_MODEL, TRANSFORMER_CACHED_MODEL];
const isTransformer = (m: ModelName) => TRANSFORMERS.includes(m);

/** Transformer dims for the memory estimate, read from config.json (LLaDA keys), defaults for what is absent. */
async function transformerDims(checkpoint: string): Promise<TransformerDims> {
  try {
    const j = JSON.parse(await readFile(join(checkpoint, "config.json"), "utf8")) as Record<string, number | null>;
    const d = j.d_model ?? DIMOO_8B_DIMS.dModel;
    return {
      ...DIMOO_8B_DIMS,
      dModel: d,
      nHeads: j.n_heads ?? DIMOO_8B_DIMS.nHeads,
      nLayers: j.n_layers ?? DIMOO_8B_DIMS.nLayers,
      mlpHidden: j.mlp_hidden_size ?? (j.mlp_ratio ?? 4) * d,
      vocab: j.embedding_size ?? j.vocab_size ?? DIMOO_8B_DIMS.vocab,
    };
  } catch {
    return { ...DIMOO_8B_DIMS };
  }
}

// ---- transformer -----------------------------------------------------------------------------------

/**
 * Builds a bf16 transformer graph (stateless or cached); checkpoint tensors already in bf16 are referenced
 * in place inside their safetensors shards, which the builder hard-links (or symlinks) beside model.onnx.
 */
async function buildTransformerOnnx(mod: TransformerBuilder, model: ModelName, weights: unknown, outDir: string): Promise<void> {
  const build = model === TRANSFORMER_CACHED_MODEL ? mod.buildCachedTransformerModel : mod.buildTransformerModel;
  await build({ weights, dtype: "bf16", outDir });
}

/**
 * TensorRT resolves external data beside the .onnx and refuses `../` or absolute paths, so every external
 * location must be a plain file name next to model.onnx. Locations that are not there yet are linked
 * from the checkpoint (symlink, or a copy where symlinks are not possible).
 */
export async function linkExternalData(onnxPath: string, checkpoint: string, log: (m: string) => void): Promise<string[]> {
  const io = await readOnnxIO(onnxPath);
  const dir = dirname(onnxPath);
  const linked: string[] = [];
  for (const loc of io.externalLocations) {
    if (isAbsolute(loc) || loc.split(/[\\/]/).includes("..") || loc.includes("/"))
      throw new BuildError(`${onnxPath}: external data location "${loc}" is not a file name beside the model; TensorRT refuses such paths`, 2);
    const target = join(dir, loc);
    if (existsSync(target)) continue;
    const source = join(checkpoint, loc);
    if (!existsSync(source)) throw new BuildError(`${onnxPath}: external data file ${loc} is neither beside the model nor in the checkpoint ${checkpoint}`, 2);
    try {
      await symlink(resolve(source), target);
    } catch {
      log(`cannot symlink ${loc}; copying it (${formatBytes((await stat(source)).size)})`);
      await copyFile(source, target);
    }
    linked.push(loc);
  }
  return linked;
}

// ---- the build -------------------------------------------------------------------------------------

function gpuDescription(): string | undefined {
  try {
    return execFileSync("nvidia-smi", ["--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"], { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

export type { TransformerBuilder };

function bucketError(name: string): never {
  throw new BuildError(`unknown transformer bucket ${name} (known: ${TRANSFORMER_BUCKETS.map((b) => b.name).join(", ")})`, 2);
}

export async function buildEngines(o: BuildEnginesOptions): Promise<BuildEnginesResult> {
  const log = o.log ?? ((m: string) => console.log(`[build-engines] ${m}`));
  const models = o.models ?? [...MODEL_NAMES];
  for (const m of models) if (!MODEL_NAMES.includes(m)) throw new BuildError(`unknown model ${m} (known: ${MODEL_NAMES.join(", ")})`, 2);
  const checkpoint = resolve(o.checkpoint);
  const out = resolve(o.out);
  const onnxDir = resolve(o.onnxDir ?? `${out}-onnx`);
  if (o.devRepository && resolve(o.devRepository) === out)
    throw new BuildError(`--out ${o.out} is the dev model repository; write production engines to their own directory (e.g. model-repository-trt)`, 2);
  if (onnxDir === out || !relative(out, onnxDir).startsWith(".."))
    throw new BuildError(`the ONNX directory ${onnxDir} must be outside the repository ${out} (Triton would try to load it as a model)`, 2);

  const missing = await missingCheckpointFiles(checkpoint, models);
  if (missing.length) throw new BuildError(`checkpoint ${checkpoint} is missing: ${missing.join(", ")}`, 2);

  let transformer: TransformerBuilder | null = null;
  if (models.some(isTransformer)) {
    transformer = await (o.loadTransformer ?? loadTransformerModule)();
    if (!transformer)
      throw new BuildError(
        `the transformer graph builder (gpu-backend/src/builder/llada, buildTransformerModel) is not available; build the VQ engines alone with --models ${VQ_ENCODER_MODEL},${VQ_DECODER_MODEL}`,
        2,
      );
  }

  // trtexec is located up front, so a missing one is reported before hours of work, but the ONNX
  // graphs and configs are still written (they are needed either way).
  let trtexec: string | null = null;
  let trtexecProblem: string | undefined;
  if (!o.skipTrtexec) {
    try {
      trtexec = findTrtexec(o.trtexec, o.env ?? process.env, o.trtexecFallbacks ?? TRTEXEC_FALLBACKS);
    } catch (e) {
      throw new BuildError((e as Error).message, 3);
    }
    if (!trtexec) trtexecProblem = `trtexec not found (looked at $TRTEXEC, every PATH directory and ${(o.trtexecFallbacks ?? TRTEXEC_FALLBACKS).join(", ")}); install TensorRT (same version as the serving Triton container) or pass --trtexec <path>`;
  }

  const buckets = o.transformerBuckets ? o.transformerBuckets.map((n) => TRANSFORMER_BUCKETS.find((b) => b.name === n) ?? bucketError(n)) : [...TRANSFORMER_BUCKETS];
  if (buckets.length === 0) throw new BuildError("no transformer buckets selected", 2);
  const cachedLimits: CachedTransformerLimits = { ...TRANSFORMER_CACHED_LIMITS, ...o.cachedLimits };
  const vqEnc = o.vqEncoder ?? VQ_ENCODER_PROFILE_DEFAULTS;
  const vqDec = o.vqDecoder ?? VQ_DECODER_PROFILE_DEFAULTS;
  log(`checkpoint ${checkpoint}`);
  log(`repository ${out}; ONNX graphs in ${onnxDir}`);

  // memory plan (upper-bound estimates; TensorRT reports the real activation memory at build time)
  let total = 0;
  if (models.includes(TRANSFORMER_CACHED_MODEL)) {
    const dims = await transformerDims(checkpoint);
    const state = { nLayers: dims.nLayers, kvWidth: dims.dModel }; // LLaDA: n_kv_heads = n_heads
    const l = cachedLimits;
    const perRequest = cachedStateSize(state, 2, l.optLen).totalBytes;
    const bindings = 2 * cachedStateSize(state, l.maxBranches, l.maxLen).totalBytes;
    // its own copy of the weights: the blocks, the embedding and only the codebook rows of the head
    total += (dims.nLayers * (4 * dims.dModel ** 2 + 3 * dims.dModel * dims.mlpHidden) + (dims.vocab + dims.codebook) * dims.dModel) * dims.elemBytes + bindings;
    log(
      `${TRANSFORMER_CACHED_MODEL}: its own weights, state bindings ${formatBytes(bindings)} (in + out at K<=${l.maxBranches}, L<=${l.maxLen}), ` +
        `state ${formatBytes(perRequest)} per request at K=2, L=${l.optLen}, up to ${l.maxSequences} requests (size --cuda-memory-pool-byte-size for them)`,
    );
  }
  if (models.includes(TRANSFORMER_MODEL)) {
    const est = estimateTransformerMemory(await transformerDims(checkpoint), buckets);
    total += est[0].weightsBytes + est.reduce((a, e) => a + e.layerActivationBytes + e.logitsBytes, 0);
    for (const e of est) {
      const b = buckets.find((x) => x.name === e.bucket)!;
      log(
        `transformer profile ${e.bucket}: L<=${b.maxLen}, rows<=${b.maxRows}: weights ${formatBytes(e.weightsBytes)}, ` +
          `layer activations ~${formatBytes(e.layerActivationBytes)}, target logits ~${formatBytes(e.logitsBytes)}, ` +
          `attention scores if not fused ${formatBytes(e.unfusedAttentionBytes)}`,
      );
    }
  }
  if (models.includes(VQ_ENCODER_MODEL)) total += estimateVqMemory("encoder", vqEnc);
  if (models.includes(VQ_DECODER_MODEL)) total += estimateVqMemory("decoder", vqDec);
  if (models.includes(VQ_ENCODER_MODEL))
    log(`vq_encoder profile: batch<=${vqEnc.maxBatch}, side<=${vqEnc.maxSide}: activations ~${formatBytes(estimateVqMemory("encoder", vqEnc))}`);
  if (models.includes(VQ_DECODER_MODEL))
    log(`vq_decoder profile: batch<=${vqDec.maxBatch}, side<=${vqDec.maxSide}: activations ~${formatBytes(estimateVqMemory("decoder", vqDec))}`);

  log(`GPU memory if every profile's context is resident (one context per transformer profile, ON_PROFILE_CHANGE): ~${formatBytes(total)} (upper bound)`);

  // 1. ONNX graphs
  await mkdir(onnxDir, { recursive: true });
  const onnxPath = (m: ModelName) => join(onnxDir, m, "model.onnx");
  if (models.includes(VQ_ENCODER_MODEL) || models.includes(VQ_DECODER_MODEL)) {
    const t0 = performance.now();
    const { config, weights, dtype } = await readVqCheckpoint(join(checkpoint, "vqvae"));
    log(`VQ-GAN: ${weights.size} tensors (${dtype}) read in ${Math.round(performance.now() - t0)} ms`);
    const save = { externalThresholdBytes: 1 << 20, producer: "dimoo-build-engines" };
    for (const m of [VQ_ENCODER_MODEL, VQ_DECODER_MODEL] as const) {
      if (!models.includes(m)) continue;
      await rm(join(onnxDir, m), { recursive: true, force: true });
      const g = m === VQ_ENCODER_MODEL ? buildVqEncoderGraph(config, weights) : buildVqDecoderGraph(config, weights);
      const s = await g.save(onnxPath(m), save);
      log(`${m}: ${onnxPath(m)} (${formatBytes(s.modelBytes)} + ${formatBytes(s.externalBytes)} external)`);
    }
  }
  let transformerConfig: LladaConfig | undefined;
  if (transformer) {
    const ckpt = await transformer.openLladaCheckpoint(checkpoint);
    transformerConfig = ckpt.config as LladaConfig;
    for (const m of models.filter(isTransformer)) {
      const dir = join(onnxDir, m);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const t0 = performance.now();
      await buildTransformerOnnx(transformer, m, ckpt, dir);
      const linked = await linkExternalData(onnxPath(m), checkpoint, log);
      log(`${m}: ${onnxPath(m)} in ${Math.round(performance.now() - t0)} ms${linked.length ? `; linked ${linked.join(", ")}` : ""}`);
    }
  }

  // 2. configs (checked against the graphs), warmup data, tokenizer
  const built: BuiltModel[] = [];
  const trtOpts = { vqEncoder: vqEnc, vqDecoder: vqDec, transformerProfiles: transformerProfiles(buckets), transformerConfig, cachedLimits };
  const bin = trtexec ?? "trtexec";
  for (const m of models) {
    const { text, warmupFiles, profiles } = renderTrtModelConfig(m, trtOpts);
    const problems = checkConfigAgainstOnnx(parsePbtxtFields(text), await readOnnxIO(onnxPath(m)));
    if (problems.length) throw new BuildError(`config.pbtxt does not match the ONNX graph: ${problems.join("; ")}`, 2);
    const modelDir = join(out, m);
    await mkdir(join(modelDir, "1"), { recursive: true });
    const config = join(modelDir, "config.pbtxt");
    await writeFile(config, text);
    for (const [f, bytes] of Object.entries(warmupFiles)) {
      await mkdir(join(modelDir, "warmup"), { recursive: true });
      await writeFile(join(modelDir, "warmup", f), bytes);
    }
    const plan = join(modelDir, "1", "model.plan");
    const args = trtexecArgs(onnxPath(m), plan, profiles, {
      workspaceMiB: o.workspaceMiB ?? (isTransformer(m) ? 16384 : 4096),
      timingCache: join(onnxDir, "timing.cache"),
      noTF32: !isTransformer(m),
      versionCompatible: o.versionCompatible,
    });
    built.push({ model: m, onnx: onnxPath(m), plan, config, args, command: shellCommand(bin, args) });
  }
  if (models.includes(TRANSFORMER_MODEL)) await copyFile(join(checkpoint, "tokenizer.json"), join(out, TRANSFORMER_MODEL, "tokenizer.json"));
  const script = join(onnxDir, "build-engines.sh");
  await writeFile(
    script,
    `#!/bin/sh\n# trtexec commands of \`npm run build:engines\` (${new Date().toISOString()}); run with the TensorRT of the serving Triton container.\nset -e\n${built.map((b) => b.command).join("\n")}\n`,
    { mode: 0o755 },
  );
  log(`configs written; trtexec commands in ${script}`);

  // 3. trtexec
  if (o.skipTrtexec) {
    log("stopping before trtexec (--skip-trtexec); the repository has configs but no model.plan files yet");
    return { models: built, onnxDir, script, stoppedBeforeTrtexec: true };
  }
  if (!trtexec) {
    log(`stopping before trtexec: ${trtexecProblem}`);
    throw new BuildError(`${trtexecProblem}. The ONNX graphs, configs and ${script} are written; run that script where TensorRT is installed.`, 3);
  }
  const gpu = gpuDescription();
  let version: string | undefined;
  for (const b of built) {
    const t0 = performance.now();
    log(`${b.model}: ${b.command}`);
    const logFile = join(onnxDir, `${b.model}.trtexec.log`);
    const run = await runTrtexec(bin, b.args, logFile);
    version ??= run.tensorrtVersion;
    if (run.code !== 0 || !existsSync(b.plan)) throw new BuildError(`trtexec failed for ${b.model} (exit ${run.code}); see ${logFile}`, 4);
    const seconds = (performance.now() - t0) / 1000;
    const mem = run.activationBytes !== undefined ? `, activation memory ${formatBytes(run.activationBytes)} (TensorRT)` : "";
    log(`${b.model}: ${b.plan} (${formatBytes((await stat(b.plan)).size)}) in ${seconds.toFixed(0)} s${mem}`);
    await writeFile(
      join(out, b.model, "build-info.json"),
      JSON.stringify(
        {
          model: b.model,
          checkpoint,
          onnx: b.onnx,
          plan: b.plan,
          trtexec,
          tensorrtVersion: run.tensorrtVersion,
          gpu,
          command: b.command,
          seconds,
          activationBytes: run.activationBytes,
          weightsBytes: run.weightsBytes,
          builtAt: new Date().toISOString(),
        },
        null,
        2,
      ) + "\n",
    );
  }
  log(`done; TensorRT ${version ?? "(version not reported)"}${gpu ? ` on ${gpu}` : ""}. Serve with the Triton container of the same TensorRT version.`);
  return { models: built, onnxDir, script, stoppedBeforeTrtexec: false, trtexec, tensorrtVersion: version };
}

