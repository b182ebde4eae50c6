// `npm run build:engines -- --checkpoint <HF Lumina-DiMOO dir> --out <repository dir>`: ONNX graphs from the
// checkpoint, TensorRT plans from trtexec, config.pbtxt for Triton's tensorrt_plan models.
// The pipeline lives in gpu-backend/src/builder/repository/build-engines.ts; model-repository/README.md
// documents buckets, memory and serving.

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { MODEL_NAMES, type ModelName } from "../builder/repository/model-config";
import { BuildError, buildEngines, type BuildEnginesResult } from "../builder/repository/build-engines";
import { TRANSFORMER_BUCKETS, TRANSFORMER_CACHED_LIMITS, VQ_DECODER_PROFILE_DEFAULTS, VQ_ENCODER_PROFILE_DEFAULTS, type CachedTransformerLimits } from "../engine/profiles";
import { DEV_MODEL_REPOSITORY } from "./build-dev-models";

export const USAGE = `usage: npm run build:engines -- --checkpoint <dir> --out <dir> [options]

  --checkpoint <dir>         Hugging Face Lumina-DiMOO files: config.json, *.safetensors, tokenizer.json,
                             vqvae/config.json, vqvae/diffusion_pytorch_model.safetensors
  --out <dir>                Triton model repository to write (not model-repository/, which holds the dev models)
  --onnx-dir <dir>           where the ONNX graphs go (default <out>-onnx)
  --models <a,b>             subset of ${MODEL_NAMES.join(",")} (default all)
  --skip-trtexec             stop after the ONNX graphs and configs (exit 0)
  --trtexec <path>           trtexec binary (default $TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec)
  --transformer-buckets <a,b> sequence-length buckets that become profiles (default all: ${TRANSFORMER_BUCKETS.map((b) => b.name).join(",")})
  --vq-max-batch <n>         VQ max_batch_size and profile batch (default ${VQ_ENCODER_PROFILE_DEFAULTS.maxBatch})
  --vq-encoder-max-side <px> largest encoder image side (default ${VQ_ENCODER_PROFILE_DEFAULTS.maxSide})
  --vq-decoder-max-side <px> largest decoder image side (default ${VQ_DECODER_PROFILE_DEFAULTS.maxSide})
  --cached-max-sequences <n> requests whose ML-Cache state dimoo_transformer_cached holds at once (default ${TRANSFORMER_CACHED_LIMITS.maxSequences})
  --cached-max-branches <n>  guidance branches its profiles allow, 1..3 (default ${TRANSFORMER_CACHED_LIMITS.maxBranches})
  --workspace-mib <n>        trtexec tactic workspace (default 16384 transformers, 4096 VQ)
  --version-compatible       build version-compatible plans (serve with --backend-config=tensorrt,version-compatible=true)

exit codes: 0 done (or stopped by --skip-trtexec), 2 bad arguments or missing checkpoint files,
            3 trtexec not found (everything before it is written), 4 trtexec failed`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new BuildError(`${name} must be a positive integer, got ${v}`, 2);
  return n;
}

function cachedLimits(maxSequences?: number, maxBranches?: number): Partial<CachedTransformerLimits> {
  if (maxBranches !== undefined && maxBranches > 3) throw new BuildError(`--cached-max-branches must be 1..3, got ${maxBranches}`, 2);
  return { ...(maxSequences && { maxSequences }), ...(maxBranches && { maxBranches, optBranches: Math.min(2, maxBranches) }) };
}

export async function main(argv: string[], log?: (m: string) => void): Promise<BuildEnginesResult> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        checkpoint: { type: "string" },
        out: { type: "string" },
        "onnx-dir": { type: "string" },
        models: { type: "string" },
        "skip-trtexec": { type: "boolean" },
        trtexec: { type: "string" },
        "vq-max-batch": { type: "string" },
        "transformer-buckets": { type: "string" },
        "vq-encoder-max-side": { type: "string" },
        "vq-decoder-max-side": { type: "string" },
        "workspace-mib": { type: "string" },
        "cached-max-sequences": { type: "string" },
        "cached-max-branches": { type: "string" },
        "version-compatible": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new BuildError(`${(e as Error).message}\n${USAGE}`, 2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const missing = (["checkpoint", "out"] as const).filter((k) => !values[k]);
  if (missing.length) throw new BuildError(`missing ${missing.map((k) => `--${k}`).join(" and ")}\n${USAGE}`, 2);
  const models = values.models?.split(",").map((s) => s.trim()).filter(Boolean) as ModelName[] | undefined;
  const maxBatch = int(values["vq-max-batch"], "--vq-max-batch");
  const encSide = int(values["vq-encoder-max-side"], "--vq-encoder-max-side");
  const decSide = int(values["vq-decoder-max-side"], "--vq-decoder-max-side");
  return buildEngines({
    checkpoint: values.checkpoint!,
    out: values.out!,
    onnxDir: values["onnx-dir"],
    models,
    skipTrtexec: values["skip-trtexec"],
    trtexec: values.trtexec,
    vqEncoder: { ...VQ_ENCODER_PROFILE_DEFAULTS, ...(maxBatch && { maxBatch }), ...(encSide && { maxSide: encSide, optSide: Math.min(encSide, VQ_ENCODER_PROFILE_DEFAULTS.optSide) }) },
    vqDecoder: { ...VQ_DECODER_PROFILE_DEFAULTS, ...(maxBatch && { maxBatch }), ...(decSide && { maxSide: decSide, optSide: Math.min(decSide, VQ_DECODER_PROFILE_DEFAULTS.optSide) }) },
    transformerBuckets: values["transformer-buckets"]?.split(",").map((s) => s.trim()).filter(Boolean),
    cachedLimits: cachedLimits(int(values["cached-max-sequences"], "--cached-max-sequences"), int(values["cached-max-branches"], "--cached-max-branches")),
    workspaceMiB: int(values["workspace-mib"], "--workspace-mib"),
    versionCompatible: values["version-compatible"],
    devRepository: DEV_MODEL_REPOSITORY,
    log,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      if (e instanceof BuildError) {
        console.error(`build-engines: ${e.message}`);
        process.exit(e.exitCode);
      }
      console.error(e);
      process.exit(1);
    },
  );
}
