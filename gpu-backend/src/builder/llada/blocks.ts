// What the stateless transformer graph (graph.ts) and the cached one (cached-graph.ts) share: weights as
// initializers from a resolver, the RoPE tables, the token embedding, the stack of decoder blocks around a
// per-layer attention that each graph supplies, ln_f and the codebook slice of the LM head.
// Maths: docs/model.md §8.3 (RMSNorm and RoPE in fp32, gated SiLU MLP, untied unscaled head).

import type { TensorSpec } from "../../engine/contract";
import { GraphBuilder, type OnnxDType, type TensorData } from "../onnx/graph-builder";
import { castIf, gatedMlp, linear, reshape, rmsNorm, ropeTables, type ComputeDType } from "../onnx/ops";
import { CODEBOOK_SIZE, IMAGE_OFFSET } from "../../model/tokens";
import { headDim, lladaNames, validateLladaConfig, type LladaConfig } from "./config";

/** Name of the image head's initializer: rows [IMAGE_OFFSET, IMAGE_OFFSET+CODEBOOK_SIZE) of the LM head. */
export const CODEBOOK_HEAD = `${lladaNames.head}[${IMAGE_OFFSET}:${IMAGE_OFFSET + CODEBOOK_SIZE}]`;

export type WeightDType = "FLOAT" | "BFLOAT16";

/** Returns an initializer's tensor in `dtype`; `rows` selects a contiguous row range of a 2-D tensor. */
export type TensorResolver = (name: string, dtype: WeightDType, rows?: { start: number; count: number }) => TensorData;

export interface LladaGraphOptions {
  /** Storage dtype of the weights. */
  weightDtype: WeightDType;
  /** Matmul input precision; defaults to the weight dtype. FLOAT with BFLOAT16 weights runs bf16 weights on CPU. */
  compute?: ComputeDType;
  /** Attention softmax precision with bf16 compute; see AttentionDims.softmax (default "fp32"). */
  attentionSoftmax?: "fp32" | "compute";
}

/** One graph under construction with its config, dtypes and weight lookup. */
export interface LladaGraph {
  g: GraphBuilder;
  cfg: LladaConfig;
  /** Weight storage dtype. */
  wd: OnnxDType;
  compute: ComputeDType;
  /** The initializer of checkpoint tensor `name` (rows of it, stored under `initName`), added once. */
  weight(name: string, rows?: { start: number; count: number }, initName?: string): string;
}

export function lladaGraph(modelName: string, cfg: LladaConfig, resolve: TensorResolver, opts: LladaGraphOptions): LladaGraph {
  validateLladaConfig(cfg);
  const g = new GraphBuilder(modelName);
  return {
    g,
    cfg,
    wd: opts.weightDtype,
    compute: opts.compute ?? opts.weightDtype,
    weight(name, rows, initName = name) {
      if (!g.initializers.has(initName)) g.initializer(initName, resolve(name, opts.weightDtype, rows));
      return initName;
    },
  };
}

const ONNX_TYPE = { INT64: "INT64", INT32: "INT32", FP32: "FLOAT", UINT8: "UINT8", BF16: "BFLOAT16" } as const;

/** Declares the contract's tensors as graph inputs (numeric dims fixed, named ones symbolic); returns their names. */
export function contractInputs<T extends Record<string, TensorSpec>>(g: GraphBuilder, specs: T): { [k in keyof T]: string } {
  const names = {} as { [k in keyof T]: string };
  for (const key of Object.keys(specs) as (keyof T)[]) {
    const s = specs[key];
    names[key] = g.input(s.name, ONNX_TYPE[s.dtype], contractDims(s));
  }
  return names;
}

/** A contract tensor's dims for the graph: numeric ones fixed, named ones symbolic. */
export function contractDims(s: TensorSpec): Array<number | string> {
  return s.dims.map((d) => (/^\d+$/.test(d) ? Number(d) : d));
}

/**
 * The RoPE tables as fp32 initializers of `maxPositions` rows ([P, hd] cos and signed sin, and the
 * positions 0..P-1), which graphs slice or gather instead of using a Range op.
 */
export function ropeInitializers(m: LladaGraph): { cos: string; sin: string; positions: string } {
  const hd = headDim(m.cfg);
  const P = m.cfg.maxPositions;
  const tables = ropeTables(hd, m.cfg.ropeTheta, P);
  return {
    cos: m.g.initializer("rope.cos", { dtype: "FLOAT", dims: [P, hd], data: tables.cos }),
    sin: m.g.initializer("rope.sin_signed", { dtype: "FLOAT", dims: [P, hd], data: tables.sinSigned }),
    positions: m.g.initializer("rope.positions", { dtype: "FLOAT", dims: [P], data: Float32Array.from({ length: P }, (_, i) => i) }),
  };
}

/** Token embeddings of int64 `ids` (any shape) as fp32 rows [*, d_model]. */
export function embed(m: LladaGraph, ids: string): string {
  const emb = m.g.op("Gather", [m.weight(lladaNames.wte), ids], { axis: 0 });
  return reshape(m.g, castIf(m.g, emb, m.wd, "FLOAT"), [-1, m.cfg.dModel]);
}

/**
 * A layer's attention: queries [T, d], keys and values [T, kv] (fp32, pre-RoPE, one row per computed
 * position) to the attention output [T, d] before the output projection.
 */
export type LayerAttention = (layer: number, q: string, k: string, v: string) => string;

/** The decoder blocks over the fp32 residual stream `x` [T, d]: pre-norm attention and gated MLP. */
export function decoderBlocks(m: LladaGraph, x: string, attend: LayerAttention): string {
  const { g, cfg, wd, compute } = m;
  const W = (name: string) => m.weight(name);
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = lladaNames.block(i);
    const h = rmsNorm(g, x, W(b.attnNorm), wd, cfg.rmsNormEps);
    const a = attend(i, linear(g, h, W(b.q), wd, compute), linear(g, h, W(b.k), wd, compute), linear(g, h, W(b.v), wd, compute));
    x = g.op("Add", [x, linear(g, a, W(b.attnOut), wd, compute)]);
    const n = rmsNorm(g, x, W(b.ffNorm), wd, cfg.rmsNormEps);
    x = g.op("Add", [x, gatedMlp(g, n, W(b.ffProj), W(b.upProj), W(b.ffOut), wd, compute)]);
  }
  return x;
}

/** Logits [T, width] of hidden rows [T, d]: ln_f, then `head` (an [width, d] initializer). */
export function headLogits(m: LladaGraph, rows: string, head: string): string {
  const n = rmsNorm(m.g, rows, m.weight(lladaNames.lnF), m.wd, m.cfg.rmsNormEps);
  return linear(m.g, n, head, m.wd, m.compute);
}

/** Rows [126356, 134548) of the LM head, the image codebook (referenced in place in a checkpoint). */
export function codebookHead(m: LladaGraph): string {
  return m.weight(lladaNames.head, { start: IMAGE_OFFSET, count: CODEBOOK_SIZE }, CODEBOOK_HEAD);
}
