// The DiMOO transformer as one ONNX graph, written from TypeScript for any LLaDA config: the engine
// contract of gpu-backend/src/engine/contract.ts (docs/engine-contract.md). Per call: R right-padded
// rows of length L, a key padding mask from seq_lens, RoPE positions 0..L-1 in every row, and two heads
// that only look at target positions (hidden states are gathered BEFORE the LM head; full-sequence
// logits are never computed):
//   image: codebook rows [126356, 134548) of the LM head, K-branch guidance, inverse-CDF sampling,
//          per-branch max codebook logit;
//   text:  the full vocabulary, guidance and sampling.
// Maths (docs/model.md §8.3): RMSNorm eps 1e-5 in fp32, NeoX rotate-half RoPE theta
// 500000 in fp32, bidirectional SDPA with scale 1/sqrt(hd), gated SiLU MLP, untied unscaled head.

import { link, mkdir, rm, stat, symlink, copyFile } from "node:fs/promises";
import { basename, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { TRANSFORMER_INPUTS, TRANSFORMER_MODEL, TRANSFORMER_OUTPUTS } from "../../engine/contract";
import { GraphBuilder, isExternal, type OnnxDType, type TensorData } from "../onnx/graph-builder";
import {
  attention,
  castIf,
  combineBranches,
  dim,
  gatedMlp,
  gatherRows,
  keyPaddingBias,
  linear,
  reshape,
  rmsNorm,
  ropeTables,
  sampleInverseCdf,
  shapeOf,
  sliceRows,
  type ComputeDType,
} from "../onnx/ops";
import { float32ToBf16 } from "../../lib/numeric";
import { floatsFromTensorBytes, readTensorBytes, type SafetensorEntry } from "../safetensors";
import { CODEBOOK_SIZE, IMAGE_OFFSET } from "../../model/tokens";
import { headDim, lladaNames, validateLladaConfig, type LladaConfig } from "./config";
import { checkLladaWeights, isCheckpoint, type LladaCheckpoint, type LladaWeights } from "./weights";

/** Name of the image head's initializer: rows [IMAGE_OFFSET, IMAGE_OFFSET+CODEBOOK_SIZE) of the LM head. */
export const CODEBOOK_HEAD = `${lladaNames.head}[${IMAGE_OFFSET}:${IMAGE_OFFSET + CODEBOOK_SIZE}]`;

/** Test-only outputs added by `debugOutputs`. */
export const DEBUG_OUTPUTS = {
  hidden: "debug_hidden", // [R,L,d] fp32, final residual stream before ln_f
  imageLogits: "debug_image_logits", // [G,K,M,8192]
  imageCombined: "debug_image_combined", // [G,M,8192]
  textLogits: "debug_text_logits", // [H,J,N,V]
} as const;

export type WeightDType = "FLOAT" | "BFLOAT16";

/** Returns an initializer's tensor in `dtype`; `rows` selects a contiguous row range of a 2-D tensor. */
export type TensorResolver = (name: string, dtype: WeightDType, rows?: { start: number; count: number }) => TensorData;

export interface TransformerGraphOptions {
  /** Storage dtype of the weights. */
  weightDtype: WeightDType;
  /** Matmul input precision; defaults to the weight dtype. FLOAT with BFLOAT16 weights runs bf16 weights on CPU. */
  compute?: ComputeDType;
  debugOutputs?: boolean;
  /** Attention softmax precision with bf16 compute; see AttentionDims.softmax (default "fp32"). */
  attentionSoftmax?: "fp32" | "compute";
}

/** The transformer graph (contract inputs and outputs) with weights from `resolve`. */
export function buildTransformerGraph(cfg: LladaConfig, resolve: TensorResolver, opts: TransformerGraphOptions): GraphBuilder {
  validateLladaConfig(cfg);
  const wd: OnnxDType = opts.weightDtype;
  const compute: ComputeDType = opts.compute ?? opts.weightDtype;
  const d = cfg.dModel;
  const hd = headDim(cfg);
  const g = new GraphBuilder(TRANSFORMER_MODEL);
  const W = (name: string, rows?: { start: number; count: number }, initName = name): string => {
    if (!g.initializers.has(initName)) g.initializer(initName, resolve(name, opts.weightDtype, rows));
    return initName;
  };

  const I = TRANSFORMER_INPUTS;
  const ids = g.input(I.inputIds.name, "INT64", I.inputIds.dims);
  const seqLens = g.input(I.seqLens.name, "INT64", I.seqLens.dims);
  const imgTargets = g.input(I.imageTargets.name, "INT64", I.imageTargets.dims);
  const imgWeights = g.input(I.imageWeights.name, "FLOAT", I.imageWeights.dims);
  const imgUniforms = g.input(I.imageUniforms.name, "FLOAT", I.imageUniforms.dims);
  const imgTemp = g.input(I.imageTemperature.name, "FLOAT", I.imageTemperature.dims);
  const txtTargets = g.input(I.textTargets.name, "INT64", I.textTargets.dims);
  const txtWeights = g.input(I.textWeights.name, "FLOAT", I.textWeights.dims);
  const txtUniforms = g.input(I.textUniforms.name, "FLOAT", I.textUniforms.dims);
  const txtTemp = g.input(I.textTemperature.name, "FLOAT", I.textTemperature.dims);

  const R = dim(g, ids, 0);
  const L = dim(g, ids, 1);

  // RoPE tables and positions, sliced to L (fp32 initializers; no Range op).
  const tables = ropeTables(hd, cfg.ropeTheta, cfg.maxPositions);
  const P = cfg.maxPositions;
  const cosT = g.initializer("rope.cos", { dtype: "FLOAT", dims: [P, hd], data: tables.cos });
  const sinT = g.initializer("rope.sin_signed", { dtype: "FLOAT", dims: [P, hd], data: tables.sinSigned });
  const posT = g.initializer("rope.positions", { dtype: "FLOAT", dims: [P], data: Float32Array.from({ length: P }, (_, i) => i) });
  const cos = sliceRows(g, cosT, L);
  const sin = sliceRows(g, sinT, L);
  const bias = keyPaddingBias(g, seqLens, sliceRows(g, posT, L), R, L);

  // Embedding, then the residual stream as fp32 rows [R*L, d].
  const emb = g.op("Gather", [W(lladaNames.wte), ids], { axis: 0 });
  let x = reshape(g, castIf(g, emb, wd, "FLOAT"), [-1, d]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = lladaNames.block(i);
    const h = rmsNorm(g, x, W(b.attnNorm), wd, cfg.rmsNormEps);
    const q = linear(g, h, W(b.q), wd, compute);
    const k = linear(g, h, W(b.k), wd, compute);
    const v = linear(g, h, W(b.v), wd, compute);
    const a = attention(g, q, k, v, cos, sin, bias, { nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: hd, R, L, softmax: opts.attentionSoftmax }, compute);
    x = g.op("Add", [x, linear(g, a, W(b.attnOut), wd, compute)]);
    const m = rmsNorm(g, x, W(b.ffNorm), wd, cfg.rmsNormEps);
    x = g.op("Add", [x, gatedMlp(g, m, W(b.ffProj), W(b.upProj), W(b.ffOut), wd, compute)]);
  }

  /** Logits [...targets.shape, width] at flat row*L+pos targets: gather, ln_f, head. */
  const headAt = (targets: string, head: string, width: number): string => {
    const rows = gatherRows(g, x, reshape(g, targets, [-1])); // [T, d]
    const n = rmsNorm(g, rows, W(lladaNames.lnF), wd, cfg.rmsNormEps);
    const logits = linear(g, n, head, wd, compute); // [T, width]
    const outShape = g.op("Concat", [g.op("Shape", [targets]), shapeOf(g, [width])], { axis: 0 });
    return g.op("Reshape", [logits, outShape], { allowzero: 1 }); // G, K or M may be 0: a 0 is a size, not "copy"
  };

  const O = TRANSFORMER_OUTPUTS;
  // Image mode over the codebook slice.
  const codebook = W(lladaNames.head, { start: IMAGE_OFFSET, count: CODEBOOK_SIZE }, CODEBOOK_HEAD);
  const imgLogits = headAt(imgTargets, codebook, CODEBOOK_SIZE); // [G,K,M,8192]
  const imgCombined = combineBranches(g, imgLogits, imgWeights); // [G,M,8192]
  const img = sampleInverseCdf(g, imgCombined, imgUniforms, imgTemp, CODEBOOK_SIZE);
  g.op("Identity", [img.tokens], {}, g.output(O.imageTokens.name, "INT64", O.imageTokens.dims));
  g.op("Identity", [img.confidence], {}, g.output(O.imageConfidence.name, "FLOAT", O.imageConfidence.dims));
  g.op("ReduceMax", [imgLogits], { axes: [3], keepdims: 0 }, g.output(O.imageMaxLogit.name, "FLOAT", O.imageMaxLogit.dims));

  // Text mode over the full vocabulary.
  const txtLogits = headAt(txtTargets, W(lladaNames.head), cfg.vocabSize); // [H,J,N,V]
  const txtCombined = combineBranches(g, txtLogits, txtWeights);
  const txt = sampleInverseCdf(g, txtCombined, txtUniforms, txtTemp, cfg.vocabSize);
  g.op("Identity", [txt.tokens], {}, g.output(O.textTokens.name, "INT64", O.textTokens.dims));
  g.op("Identity", [txt.confidence], {}, g.output(O.textProbability.name, "FLOAT", O.textProbability.dims));

  if (opts.debugOutputs) {
    g.op("Reshape", [x, shapeOf(g, [R, L, d])], {}, g.output(DEBUG_OUTPUTS.hidden, "FLOAT", ["R", "L", d]));
    g.op("Identity", [imgLogits], {}, g.output(DEBUG_OUTPUTS.imageLogits, "FLOAT", ["G", "K", "M", CODEBOOK_SIZE]));
    g.op("Identity", [imgCombined], {}, g.output(DEBUG_OUTPUTS.imageCombined, "FLOAT", ["G", "M", CODEBOOK_SIZE]));
    g.op("Identity", [txtLogits], {}, g.output(DEBUG_OUTPUTS.textLogits, "FLOAT", ["H", "J", "N", cfg.vocabSize]));
  }
  return g;
}

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

/**
 * Writes `<outDir>/model.onnx` for the transformer. In-memory weights go to `model.onnx.data`. Checkpoint
 * tensors already in the wanted dtype are referenced in place inside their safetensors files, which are
 * placed (hard-linked / symlinked / copied) beside model.onnx; others are converted into model.onnx.data.
 */
export async function buildTransformerModel(opts: BuildTransformerOptions): Promise<BuiltTransformerModel> {
  const t0 = performance.now();
  const weightDtype: WeightDType = opts.dtype === "bf16" ? "BFLOAT16" : "FLOAT";
  const compute: ComputeDType = (opts.compute ?? opts.dtype) === "bf16" ? "BFLOAT16" : "FLOAT";
  const modelPath = join(opts.outDir, opts.fileName ?? "model.onnx");
  await mkdir(opts.outDir, { recursive: true });
  let resolver: TensorResolver;
  let config: LladaConfig;
  const referenced = new Set<string>();
  let inPlace = 0;
  if (isCheckpoint(opts.weights)) {
    const ckpt = opts.weights;
    config = opts.config ?? ckpt.config;
    checkLladaWeights(config, ckpt.entries, `transformer checkpoint ${ckpt.dir}`);
    const converted = new Map<string, Float32Array>();
    for (const [name, e] of ckpt.entries)
      if (e.dtype !== ST_DTYPE[weightDtype]) converted.set(name, floatsFromTensorBytes(await readTensorBytes(e), e.dtype, name));
    const base = checkpointResolver(ckpt, (file) => basename(file), converted);
    const files = new Map<string, SafetensorEntry>();
    resolver = (name, dtype, rows) => {
      const t = base(name, dtype, rows);
      if (isExternal(t.data)) {
        files.set(ckpt.entries.get(name)!.file, ckpt.entries.get(name)!);
        inPlace++;
      }
      return t;
    };
    const g = buildTransformerGraph(config, resolver, { weightDtype, compute, debugOutputs: opts.debugOutputs, attentionSoftmax: opts.attentionSoftmax });
    for (const file of files.keys()) {
      await placeShard(file, join(opts.outDir, basename(file)), opts.shardPlacement ?? "link");
      referenced.add(basename(file));
    }
    const sizes = await g.save(modelPath, { externalThresholdBytes: 4096 });
    return { modelPath, config, ...sizes, referencedFiles: [...referenced], inPlaceTensors: inPlace, seconds: (performance.now() - t0) / 1000 };
  }
  if (!opts.config) throw new Error("buildTransformerModel: config is required with in-memory weights");
  config = opts.config;
  checkLladaWeights(config, opts.weights);
  resolver = memoryResolver(opts.weights);
  const g = buildTransformerGraph(config, resolver, { weightDtype, compute, debugOutputs: opts.debugOutputs, attentionSoftmax: opts.attentionSoftmax });
  const sizes = await g.save(modelPath, { externalThresholdBytes: 4096 });
  return { modelPath, config, ...sizes, referencedFiles: [], inPlaceTensors: 0, seconds: (performance.now() - t0) / 1000 };
}
