// Writes the transformer graphs to disk as model.onnx: weights from memory (dev models, tests) or
// referenced in place inside a Hugging Face safetensors checkpoint (production: 16 GB of bf16 weights are
// never copied; the shards are placed beside model.onnx, where TensorRT and onnxruntime look for them).
// The stateless transformer (graph.ts) and the cached one (cached-graph.ts) are built the same way.

import { copyFile, link, mkdir, rm, stat, symlink } from "node:fs/promises";
import { basename, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { float32ToBf16 } from "../../lib/numeric";
import { isExternal, type GraphBuilder } from "../onnx/graph-builder";
import type { ComputeDType } from "../onnx/ops";
import { floatsFromTensorBytes, readTensorBytes, type SafetensorEntry } from "../safetensors";
import type { LladaGraphOptions, TensorResolver, WeightDType } from "./blocks";
import { buildCachedTransformerGraph } from "./cached-graph";
import type { LladaConfig } from "./config";
import { buildTransformerGraph } from "./graph";
import { checkLladaWeights, isCheckpoint, type LladaCheckpoint, type LladaWeights } from "./weights";

// ---- weight resolvers --------------------------------------------------------------------------------

function rowSlice<T extends Float32Array>(data: T, shape: number[], rows?: { start: number; count: number }): T {
  if (!rows) return data;
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  if (rows.start + rows.count > shape[0]) throw new Error(`rows [${rows.start}, ${rows.start + rows.count}) outside [0, ${shape[0]})`);
  return data.subarray(rows.start * width, (rows.start + rows.count) * width) as T;
}

function rowShape(shape: number[], rows?: { start: number; count: number }): number[] {
  return rows ? [rows.count, ...shape.slice(1)] : [...shape];
}

/** Serves in-memory fp32 weights as FLOAT or as BFLOAT16 (round to nearest even). */
export function memoryResolver(weights: LladaWeights): TensorResolver {
  return (name, dtype, rows) => {
    const t = weights.get(name);
    if (!t) throw new Error(`transformer graph: no weight ${name}`);
    const data = rowSlice(t.data, t.shape, rows);
    return { dtype, dims: rowShape(t.shape, rows), data: dtype === "FLOAT" ? data : float32ToBf16(data) };
  };
}

const ST_DTYPE: Record<WeightDType, string> = { FLOAT: "F32", BFLOAT16: "BF16" };

/**
 * Serves checkpoint tensors whose dtype matches as references into the safetensors files (ONNX external
 * data, no copy; `location(file)` names the file relative to the model), and the others from `converted`.
 */
export function checkpointResolver(ckpt: LladaCheckpoint, location: (file: string) => string, converted: Map<string, Float32Array>): TensorResolver {
  return (name, dtype, rows) => {
    const e = ckpt.entries.get(name);
    if (!e) throw new Error(`transformer graph: checkpoint has no ${name}`);
    if (e.dtype === ST_DTYPE[dtype]) {
      const rowBytes = e.length / e.shape[0];
      const offset = rows ? e.offset + rows.start * rowBytes : e.offset;
      const length = rows ? rows.count * rowBytes : e.length;
      return { dtype, dims: rowShape(e.shape, rows), data: { location: location(e.file), offset, length } };
    }
    const f = converted.get(name);
    if (!f) throw new Error(`transformer graph: ${name} is ${e.dtype}, not ${ST_DTYPE[dtype]}, and was not converted`);
    const data = rowSlice(f, e.shape, rows);
    return { dtype, dims: rowShape(e.shape, rows), data: dtype === "FLOAT" ? data : float32ToBf16(data) };
  };
}

// ---- building model files ----------------------------------------------------------------------------

export type ShardPlacement = "link" | "symlink" | "copy";

export interface BuildTransformerOptions {
  /** Defaults to the checkpoint's config; required with in-memory weights. */
  config?: LladaConfig;
  weights: LladaWeights | LladaCheckpoint;
  /** Weight storage: fp32 for dev models, bf16 for production. */
  dtype: "fp32" | "bf16";
  /** Matmul precision, default = dtype. ("fp32" with bf16 weights runs on onnxruntime's CPU provider.) */
  compute?: "fp32" | "bf16";
  /** Directory of model.onnx (e.g. model-repository/dimoo_transformer/1). */
  outDir: string;
  fileName?: string;
  debugOutputs?: boolean;
  /** Attention softmax precision with bf16 compute (default "fp32"); "compute" is TensorRT's fusable pattern. */
  attentionSoftmax?: "fp32" | "compute";
  /**
   * How checkpoint shards referenced in place get beside model.onnx (TensorRT refuses `../` locations):
   * "link" = hard link, falling back to a symlink across file systems (default); "symlink"; "copy".
   * onnxruntime resolves symlinks and rejects external data outside the model directory, so a
   * symlinked model only loads in TensorRT; hard links and copies load in both.
   */
  shardPlacement?: ShardPlacement;
}

export interface BuiltTransformerModel {
  modelPath: string;
  config: LladaConfig;
  /** Bytes of model.onnx and of model.onnx.data (weights written by this build). */
  modelBytes: number;
  externalBytes: number;
  /** Checkpoint files placed beside model.onnx and referenced in place. */
  referencedFiles: string[];
  inPlaceTensors: number;
  seconds: number;
}

async function placeShard(src: string, dst: string, how: ShardPlacement): Promise<void> {
  const s = await stat(src);
  try {
    const d = await stat(dst);
    if (d.ino === s.ino && d.dev === s.dev) return;
    if (how === "copy" && d.size === s.size) return;
  } catch {
    /* absent */
  }
  await rm(dst, { force: true });
  if (how === "copy") return copyFile(src, dst);
  if (how === "link") {
    try {
      return await link(src, dst);
    } catch {
      /* other file system: symlink */
    }
  }
  await symlink(resolvePath(src), dst);
}

type GraphFn = (cfg: LladaConfig, resolve: TensorResolver, opts: LladaGraphOptions & { debugOutputs?: boolean }) => GraphBuilder;

/**
 * Writes `<outDir>/model.onnx` for the stateless transformer (dimoo_transformer). In-memory weights go
 * to `model.onnx.data`. Checkpoint tensors already in the wanted dtype are referenced in place inside
 * their safetensors files, which are placed (hard-linked / symlinked / copied) beside model.onnx; others
 * are converted into model.onnx.data.
 */
export function buildTransformerModel(opts: BuildTransformerOptions): Promise<BuiltTransformerModel> {
  return buildModelFile(opts, buildTransformerGraph);
}

/** The same for the stateful transformer of the ML-Cache (dimoo_transformer_cached); no debug outputs. */
export function buildCachedTransformerModel(opts: Omit<BuildTransformerOptions, "debugOutputs">): Promise<BuiltTransformerModel> {
  return buildModelFile(opts, buildCachedTransformerGraph);
}

async function buildModelFile(opts: BuildTransformerOptions, buildGraph: GraphFn): Promise<BuiltTransformerModel> {
  const t0 = performance.now();
  const weightDtype: WeightDType = opts.dtype === "bf16" ? "BFLOAT16" : "FLOAT";
  const compute: ComputeDType = (opts.compute ?? opts.dtype) === "bf16" ? "BFLOAT16" : "FLOAT";
  const graphOpts = { weightDtype, compute, debugOutputs: opts.debugOutputs, attentionSoftmax: opts.attentionSoftmax };
  const modelPath = join(opts.outDir, opts.fileName ?? "model.onnx");
  await mkdir(opts.outDir, { recursive: true });
  const referenced = new Set<string>();
  let inPlace = 0;
  if (isCheckpoint(opts.weights)) {
    const ckpt = opts.weights;
    const config = opts.config ?? ckpt.config;
    checkLladaWeights(config, ckpt.entries, `transformer checkpoint ${ckpt.dir}`);
    const converted = new Map<string, Float32Array>();
    for (const [name, e] of ckpt.entries)
      if (e.dtype !== ST_DTYPE[weightDtype]) converted.set(name, floatsFromTensorBytes(await readTensorBytes(e), e.dtype, name));
    const base = checkpointResolver(ckpt, (file) => basename(file), converted);
    const files = new Map<string, SafetensorEntry>();
    const resolver: TensorResolver = (name, dtype, rows) => {
      const t = base(name, dtype, rows);
      if (isExternal(t.data)) {
        files.set(ckpt.entries.get(name)!.file, ckpt.entries.get(name)!);
        inPlace++;
      }
      return t;
    };
    const g = buildGraph(config, resolver, graphOpts);
    for (const file of files.keys()) {
      await placeShard(file, join(opts.outDir, basename(file)), opts.shardPlacement ?? "link");
      referenced.add(basename(file));
    }
    const sizes = await g.save(modelPath, { externalThresholdBytes: 4096 });
    return { modelPath, config, ...sizes, referencedFiles: [...referenced], inPlaceTensors: inPlace, seconds: (performance.now() - t0) / 1000 };
  }
  if (!opts.config) throw new Error("buildTransformerModel: config is required with in-memory weights");
  const config = opts.config;
  checkLladaWeights(config, opts.weights);
  const g = buildGraph(config, memoryResolver(opts.weights), graphOpts);
  const sizes = await g.save(modelPath, { externalThresholdBytes: 4096 });
  return { modelPath, config, ...sizes, referencedFiles: [], inPlaceTensors: 0, seconds: (performance.now() - t0) / 1000 };
}
