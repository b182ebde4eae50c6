// ONNX graphs of the aMUSEd VQ-GAN, written from TypeScript with the diffusers tensor names as
// initializer names. The I/O follows gpu-backend/src/engine/contract.ts:
//   vq_encoder: pixels UINT8 [B,3,H,W] -> codes INT64 [B,H/16,W/16]
//   vq_decoder: codes INT64 [B,h,w]    -> pixels UINT8 [B,3,16h,16w]
// Maths (docs/model.md §9.3): pixels u8/255 in [0,1]; GroupNorm eps 1e-6;
// downsample pads right/bottom then 3x3 stride 2; nearest 2x upsample + conv; argmin L2 quantiser;
// output clip(0,1) then round(x*255) (round half to even, as numpy) and cast to uint8.
//
// Quantiser: argmin_k ||z - e_k||^2 = argmin_k (||e_k||^2 - 2 z.e_k), because ||z||^2 is the same for
// every k. The graph leaves ||z||^2 out (adding it changes no comparison in exact arithmetic, and in fp32
// it only rounds away low bits of the differences). -2E^T and ||e||^2 are precomputed initializers (the
// norms in float64), so the encoder does one MatMul [B,h,w,D] x [D,K], one Add and an ArgMin. Ties go to
// the lowest index (ArgMin select_last_index=0), as torch.argmin does; see reference.ts for the exactness
// statement the tests check.

import { VQ_DECODER_INPUTS, VQ_DECODER_OUTPUTS, VQ_ENCODER_INPUTS, VQ_ENCODER_OUTPUTS } from "../../engine/contract";
import { GraphBuilder, type SaveOptions } from "../onnx/graph-builder";
import { conv2d, downsample2D, groupNorm, resnetBlock2D, silu, upsample2D, type ParamFn } from "../onnx/ops-conv";
import { validateVqConfig, vqLayout, type VqConfig } from "./config";
import { checkVqWeights, type VqWeights } from "./weights";

export interface VqGraphOptions {
  /** Adds a float output with the pre-quantisation latents [B,D,h,w] ("latents") or the pre-clip decoded image ("decoded"). Tests only. */
  debugOutputs?: boolean;
}

/** Registers each weight as an initializer (named as in the checkpoint) on first use. */
function params(g: GraphBuilder, weights: VqWeights): ParamFn {
  return (name, dims) => {
    const t = weights.get(name);
    if (!t) throw new Error(`VQ graph: no weight ${name}`);
    if (!dims) {
      if (!g.initializers.has(name)) g.initializer(name, { dtype: "FLOAT", dims: t.shape, data: t.data });
      return name;
    }
    const alias = `${name}:${dims.join("x")}`;
    if (dims.reduce((a, b) => a * b, 1) !== t.data.length) throw new Error(`${name}: cannot view [${t.shape}] as [${dims}]`);
    if (!g.initializers.has(alias)) g.initializer(alias, { dtype: "FLOAT", dims, data: t.data });
    return alias;
  };
}

/** The encoder: uint8 pixels -> codes (plus "latents" with debugOutputs). */
export function buildVqEncoderGraph(cfg: VqConfig, weights: VqWeights, opts: VqGraphOptions = {}): GraphBuilder {
  validateVqConfig(cfg);
  checkVqWeights(cfg, weights);
  const L = vqLayout(cfg);
  const g = new GraphBuilder("vq_encoder");
  const p = params(g, weights);
  const groups = cfg.normNumGroups;
  const eps = cfg.normEps;
  const pixelsIn = g.input(VQ_ENCODER_INPUTS.pixels.name, "UINT8", ["B", cfg.inChannels, "H", "W"]);
  let x = g.op("Div", [g.op("Cast", [pixelsIn], { to: 1 }), g.scalarFloat(255)]);
  x = conv2d(g, x, p, L.encoder.convIn.prefix);
  for (const block of L.encoder.down) {
    for (const r of block.resnets) x = resnetBlock2D(g, x, p, r, groups, eps);
    if (block.downsample) x = downsample2D(g, x, p, block.downsample.prefix);
  }
  for (const r of L.encoder.mid) x = resnetBlock2D(g, x, p, r, groups, eps);
  x = silu(g, groupNorm(g, x, p, L.encoder.normOut.prefix, L.encoder.normOut.channels, groups, eps));
  x = conv2d(g, x, p, L.encoder.convOut.prefix);
  const z = conv2d(g, x, p, L.quantConv.prefix, { kernel: 1 });
  if (opts.debugOutputs) g.op("Identity", [z], {}, g.output("latents", "FLOAT", ["B", cfg.vqEmbedDim, "h", "w"]));

  const codes = addQuantizer(g, z, weights.get(L.codebook.name)!.data, cfg.numVqEmbeddings, cfg.vqEmbedDim, L.codebook.name);
  g.op("Identity", [codes], {}, g.output(VQ_ENCODER_OUTPUTS.codes.name, "INT64", ["B", "h", "w"]));
  return g;
}

/**
 * Nearest codebook entry per position of z [B, D, h, w] -> INT64 [B, h, w]: ArgMin over k of
 * ||e_k||^2 - 2 z.e_k (ties: lowest k). `codebook` is [K, D] row-major.
 */
export function addQuantizer(g: GraphBuilder, z: string, codebook: Float32Array, K: number, D: number, name = "codebook"): string {
  if (codebook.length !== K * D) throw new Error(`quantizer: codebook has ${codebook.length} values, expected ${K}x${D}`);
  const neg2T = new Float32Array(D * K);
  const norms = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let d = 0; d < D; d++) {
      const v = codebook[k * D + d];
      neg2T[d * K + k] = -2 * v;
      s += v * v;
    }
    norms[k] = s;
  }
  const neg2Name = g.initializer(`${name}:neg2T`, { dtype: "FLOAT", dims: [D, K], data: neg2T });
  const normName = g.initializer(`${name}:sqnorm`, { dtype: "FLOAT", dims: [K], data: norms });
  const zt = g.op("Transpose", [z], { perm: [0, 2, 3, 1] }); // [B,h,w,D]
  const dist = g.op("Add", [g.op("MatMul", [zt, neg2Name]), normName]); // [B,h,w,K]
  return g.op("ArgMin", [dist], { axis: 3, keepdims: 0, select_last_index: 0 });
}

/** The decoder: codes -> uint8 pixels (plus "decoded", the float image before clip, with debugOutputs). */
export function buildVqDecoderGraph(cfg: VqConfig, weights: VqWeights, opts: VqGraphOptions = {}): GraphBuilder {
  validateVqConfig(cfg);
  checkVqWeights(cfg, weights);
  const L = vqLayout(cfg);
  const g = new GraphBuilder("vq_decoder");
  const p = params(g, weights);
  const groups = cfg.normNumGroups;
  const eps = cfg.normEps;
  const codes = g.input(VQ_DECODER_INPUTS.codes.name, "INT64", ["B", "h", "w"]);
  const q = g.op("Gather", [p(L.codebook.name), codes], { axis: 0 }); // [B,h,w,D]
  let x = g.op("Transpose", [q], { perm: [0, 3, 1, 2] });
  x = conv2d(g, x, p, L.postQuantConv.prefix, { kernel: 1 });
  x = conv2d(g, x, p, L.decoder.convIn.prefix);
  for (const r of L.decoder.mid) x = resnetBlock2D(g, x, p, r, groups, eps);
  for (const block of L.decoder.up) {
    for (const r of block.resnets) x = resnetBlock2D(g, x, p, r, groups, eps);
    if (block.upsample) x = upsample2D(g, x, p, block.upsample.prefix);
  }
  x = silu(g, groupNorm(g, x, p, L.decoder.normOut.prefix, L.decoder.normOut.channels, groups, eps));
  x = conv2d(g, x, p, L.decoder.convOut.prefix);
  if (opts.debugOutputs) g.op("Identity", [x], {}, g.output("decoded", "FLOAT", ["B", cfg.outChannels, "H", "W"]));
  const clipped = g.op("Clip", [x, g.scalarFloat(0), g.scalarFloat(1)]);
  const rounded = g.op("Round", [g.op("Mul", [clipped, g.scalarFloat(255)])]);
  g.op("Cast", [rounded], { to: 2 }, g.output(VQ_DECODER_OUTPUTS.pixels.name, "UINT8", ["B", cfg.outChannels, "H", "W"]));
  return g;
}

export interface SavedVqModels {
  encoder: { path: string; modelBytes: number; externalBytes: number };
  decoder: { path: string; modelBytes: number; externalBytes: number };
}

/**
 * Writes `<encoderDir>/model.onnx` and `<decoderDir>/model.onnx`; initializers of at least
 * `externalThresholdBytes` go to `model.onnx.data` beside them (default 1 MiB: the real 585 MB VQ is
 * under the 2 GB protobuf limit, but external data keeps the graph file small and mmap-friendly).
 */
export async function saveVqModels(
  cfg: VqConfig,
  weights: VqWeights,
  dirs: { encoderDir: string; decoderDir: string },
  opts: SaveOptions = {},
): Promise<SavedVqModels> {
  const save = { externalThresholdBytes: 1 << 20, producer: "dimoo-vqgan", ...opts };
  const encPath = `${dirs.encoderDir}/model.onnx`;
  const decPath = `${dirs.decoderDir}/model.onnx`;
  const enc = await buildVqEncoderGraph(cfg, weights).save(encPath, save);
  const dec = await buildVqDecoderGraph(cfg, weights).save(decPath, save);
  return { encoder: { path: encPath, ...enc }, decoder: { path: decPath, ...dec } };
}
