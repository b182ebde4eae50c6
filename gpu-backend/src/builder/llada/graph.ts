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

import { TRANSFORMER_INPUTS, TRANSFORMER_MODEL, TRANSFORMER_OUTPUTS } from "../../engine/contract";
import type { GraphBuilder } from "../onnx/graph-builder";
import { attention, cast, combineBranches, dim, gatherRows, keyPaddingBias, reshape, sampleInverseCdf, shapeOf, sliceRows, unsqueeze } from "../onnx/ops";
import { CODEBOOK_SIZE } from "../../model/tokens";
import { headDim, lladaNames, type LladaConfig } from "./config";
import { codebookHead, contractInputs, decoderBlocks, embed, headLogits, lladaGraph, ropeInitializers, type LladaGraphOptions, type TensorResolver } from "./blocks";

/** Test-only outputs added by `debugOutputs`. */
export const DEBUG_OUTPUTS = {
  hidden: "debug_hidden", // [R,L,d] fp32, final residual stream before ln_f
  imageLogits: "debug_image_logits", // [G,K,M,8192]
  imageCombined: "debug_image_combined", // [G,M,8192]
  textLogits: "debug_text_logits", // [H,J,N,V]
} as const;

export interface TransformerGraphOptions extends LladaGraphOptions {
  debugOutputs?: boolean;
}

/** The transformer graph (contract inputs and outputs) with weights from `resolve`. */
export function buildTransformerGraph(cfg: LladaConfig, resolve: TensorResolver, opts: TransformerGraphOptions): GraphBuilder {
  const m = lladaGraph(TRANSFORMER_MODEL, cfg, resolve, opts);
  const g = m.g;
  const d = cfg.dModel;
  const hd = headDim(cfg);

  const c = contractInputs(g, TRANSFORMER_INPUTS);
  const { inputIds: ids, seqLens, imageWeights: imgWeights, imageUniforms: imgUniforms, imageTemperature: imgTemp } = c;
  const { textWeights: txtWeights, textUniforms: txtUniforms, textTemperature: txtTemp } = c;
  // [G,Kt,M] slot lists (Kt = 1 or K) plus one offset per branch: the [G,K,M] flat indices, int64 for Gather.
  const branchTargets = (targets: string, offsets: string) => {
    const full = g.op("Expand", [targets, shapeOf(g, [dim(g, offsets, 0), dim(g, offsets, 1), dim(g, targets, 2)])]);
    return cast(g, g.op("Add", [full, unsqueeze(g, offsets, [2])]), "INT64");
  };
  const imgTargets = branchTargets(c.imageTargets, c.imageBranchOffsets);
  const txtTargets = branchTargets(c.textTargets, c.textBranchOffsets);

  const R = dim(g, ids, 0);
  const L = dim(g, ids, 1);

  // RoPE tables and positions, sliced to L (no Range op).
  const rope = ropeInitializers(m);
  const cos = sliceRows(g, rope.cos, L);
  const sin = sliceRows(g, rope.sin, L);
  const bias = keyPaddingBias(g, seqLens, sliceRows(g, rope.positions, L), R, L);

  // The residual stream as fp32 rows [R*L, d].
  const dims = { nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: hd, R, L, softmax: opts.attentionSoftmax };
  const x = decoderBlocks(m, embed(m, cast(g, ids, "INT64")), (_layer, q, k, v) => attention(g, q, k, v, cos, sin, bias, dims, m.compute));

  /** Logits [...targets.shape, width] at flat row*L+pos targets: gather, ln_f, head. */
  const headAt = (targets: string, head: string, width: number): string => {
    const logits = headLogits(m, gatherRows(g, x, reshape(g, targets, [-1])), head); // [T, width]
    const outShape = g.op("Concat", [g.op("Shape", [targets]), shapeOf(g, [width])], { axis: 0 });
    return g.op("Reshape", [logits, outShape], { allowzero: 1 }); // G, K or M may be 0: a 0 is a size, not "copy"
  };

  const O = TRANSFORMER_OUTPUTS;
  // Image mode over the codebook slice.
  const imgLogits = headAt(imgTargets, codebookHead(m), CODEBOOK_SIZE); // [G,K,M,8192]
  const imgCombined = combineBranches(g, imgLogits, imgWeights); // [G,M,8192]
  const img = sampleInverseCdf(g, imgCombined, imgUniforms, imgTemp, CODEBOOK_SIZE);
  g.op("Identity", [cast(g, img.tokens, "INT32")], {}, g.output(O.imageTokens.name, "INT32", O.imageTokens.dims));
  g.op("Identity", [img.confidence], {}, g.output(O.imageConfidence.name, "FLOAT", O.imageConfidence.dims));
  g.op("ReduceMax", [imgLogits], { axes: [3], keepdims: 0 }, g.output(O.imageMaxLogit.name, "FLOAT", O.imageMaxLogit.dims));

  // Text mode over the full vocabulary.
  const txtLogits = headAt(txtTargets, m.weight(lladaNames.head), cfg.vocabSize); // [H,J,N,V]
  const txtCombined = combineBranches(g, txtLogits, txtWeights);
  const txt = sampleInverseCdf(g, txtCombined, txtUniforms, txtTemp, cfg.vocabSize);
  g.op("Identity", [cast(g, txt.tokens, "INT32")], {}, g.output(O.textTokens.name, "INT32", O.textTokens.dims));
  g.op("Identity", [txt.confidence], {}, g.output(O.textProbability.name, "FLOAT", O.textProbability.dims));

  if (opts.debugOutputs) {
    g.op("Reshape", [x, shapeOf(g, [R, L, d])], {}, g.output(DEBUG_OUTPUTS.hidden, "FLOAT", ["R", "L", d]));
    g.op("Identity", [imgLogits], {}, g.output(DEBUG_OUTPUTS.imageLogits, "FLOAT", ["G", "K", "M", CODEBOOK_SIZE]));
    g.op("Identity", [imgCombined], {}, g.output(DEBUG_OUTPUTS.imageCombined, "FLOAT", ["G", "M", CODEBOOK_SIZE]));
    g.op("Identity", [txtLogits], {}, g.output(DEBUG_OUTPUTS.textLogits, "FLOAT", ["H", "J", "N", cfg.vocabSize]));
  }
  return g;
}
