// The stateful DiMOO transformer of the ML-Cache (docs/model.md §6.3) as one ONNX graph: one step of one
// request's K guidance branches that recomputes only the P positions in `recompute` and reads every other
// position's keys, values and logits from the state Triton keeps for the sequence (the contract's
// TRANSFORMER_CACHED_* in engine/contract.ts, docs/engine-contract.md "dimoo_transformer_cached").
//
// Per step: embed the ids at the recompute positions; per layer q, k, v = proj(norm(h)) for those rows,
// the new pre-RoPE k and v overwrite the state rows at those positions (ScatterND), RoPE on the queries
// at their true positions and on the whole key cache at 0..L-1, attention of the P queries over all L
// keys with the key padding mask from seq_lens, output projection and MLP; then ln_f and the codebook
// head for the P rows, scattered into the logit cache. Sampling at the targets and the per-position max
// logit read the updated logit cache, exactly as the stateless graph samples fresh logits.
//
// State layout: one [K, L, kv] state per layer for keys and one for values (so each layer's scatter
// touches only its own tensor and writes the output state directly), and [K, L, 8192] logits, all in the
// matmul dtype (bf16 in production, where every cached value already comes out of a bf16 matmul, so the
// cache loses nothing). Each state input is broadcast to [K, L, *] first: Triton's first request of a
// sequence carries the [1, 1, *] zero initial state, which a refresh step (always the first) overwrites in
// full; afterwards the Expand is a no-op. No control inputs are needed for that.

import {
  cachedTransformerStates,
  TRANSFORMER_CACHED_INPUTS,
  TRANSFORMER_CACHED_MODEL,
  TRANSFORMER_CACHED_OUTPUTS,
  TRANSFORMER_CACHED_STATE,
  type StateSpec,
} from "../../engine/contract";
import { ONNX_DTYPES, type GraphBuilder, type OnnxDType } from "../onnx/graph-builder";
import {
  applyRope,
  attendRotated,
  cast,
  castIf,
  combineBranches,
  dim,
  f32,
  gatherRows,
  i64,
  keyPaddingBias,
  reshape,
  ropeOverHeads,
  sampleInverseCdf,
  scatterRows,
  shapeOf,
  sliceRows,
  unsqueeze,
} from "../onnx/ops";
import { CODEBOOK_SIZE } from "../../model/tokens";
import { codebookHead, contractDims, contractInputs, decoderBlocks, embed, headLogits, lladaGraph, ropeInitializers, type LladaGraphOptions, type TensorResolver } from "./blocks";
import { headDim, type LladaConfig } from "./config";

/** The cached-transformer graph (contract inputs, outputs and state) with weights from `resolve`. */
export function buildCachedTransformerGraph(cfg: LladaConfig, resolve: TensorResolver, opts: LladaGraphOptions): GraphBuilder {
  const m = lladaGraph(TRANSFORMER_CACHED_MODEL, cfg, resolve, opts);
  const g = m.g;
  const hd = headDim(cfg);
  const kvWidth = cfg.nKvHeads * hd;
  const stateType: OnnxDType = m.compute;

  const c = contractInputs(g, TRANSFORMER_CACHED_INPUTS);
  const { seqLens, imageWeights: weights, imageUniforms: uniforms, imageTemperature: temperature } = c;
  const O = TRANSFORMER_CACHED_OUTPUTS;
  const outTokens = g.output(O.imageTokens.name, "INT32", contractDims(O.imageTokens));
  const outConfidence = g.output(O.imageConfidence.name, "FLOAT", contractDims(O.imageConfidence));
  const outCodes = g.output(O.recomputeCodes.name, "UINT8", contractDims(O.recomputeCodes));
  const outQuantile = g.output(O.quantileValues.name, "FLOAT", contractDims(O.quantileValues));
  const outMaxLogit = g.output(O.maxLogit.name, "FLOAT", contractDims(O.maxLogit));
  const widthOf = (s: StateSpec) => (s === TRANSFORMER_CACHED_STATE.logits ? CODEBOOK_SIZE : kvWidth);
  for (const s of cachedTransformerStates(cfg.nLayers)) {
    g.input(s.input, stateType, ["K_in", "L_in", widthOf(s)]);
    g.output(s.output, stateType, ["K", "L", widthOf(s)]);
  }

  const ids = cast(g, c.inputIds, "INT64");
  const K = dim(g, ids, 0);
  const L = dim(g, ids, 1);
  const rope = ropeInitializers(m);
  // The positions to recompute, int64 for ScatterND: the listed ones ([1, P] for every branch or [K, P]),
  // or on a refresh, sent as [1, 0], every position 0..L-1 of every branch. The switch is shape arithmetic
  // (all = L when P = 0, else 0), so TensorRT resolves it from the input dims and no If is needed.
  const listedCount = dim(g, c.recompute, 1);
  const all = g.op("Max", [g.op("Sub", [L, g.op("Mul", [listedCount, L])]), i64(g, [0])]);
  const listed = g.op("Expand", [cast(g, c.recompute, "INT64"), shapeOf(g, [K, listedCount])]);
  const everyPosition = g.op("Expand", [unsqueeze(g, cast(g, sliceRows(g, rope.positions, all), "INT64"), [0]), shapeOf(g, [K, all])]);
  const recompute = g.op("Concat", [listed, everyPosition], { axis: 1 }); // [K,P]
  const P = dim(g, recompute, 1);
  // The [Kt, M] target lists (Kt = 1 or K) shifted per branch: [K, M].
  const fullTargets = g.op("Expand", [c.imageTargets, shapeOf(g, [K, dim(g, c.imageTargets, 1)])]);
  const targets = cast(g, g.op("Add", [fullTargets, unsqueeze(g, c.imageTargetShift, [1])]), "INT64");

  // Row k of a [K, L, *] state flattened to [K*L, *] starts at k*L; positions become flat row indices.
  const branchStart = unsqueeze(g, g.op("Mul", [cast(g, sliceRows(g, rope.positions, K), "INT64"), L]), [1]); // [K,1]
  const recomputeRows = g.op("Add", [recompute, branchStart]); // [K,P]
  const targetRows = g.op("Add", [targets, branchStart]); // [K,M]

  /** The updated state: input state broadcast to [K*L, width], the new rows written at `recomputeRows`. */
  const updateState = (spec: StateSpec, rows: string): string => {
    const width = widthOf(spec);
    const base = reshape(g, g.op("Expand", [spec.input, shapeOf(g, [K, L, width])]), [-1, width]);
    const updated = scatterRows(g, base, recomputeRows, reshape(g, castIf(g, rows, "FLOAT", stateType), [K, P, width]));
    g.op("Reshape", [updated, shapeOf(g, [K, L, width])], {}, spec.output);
    return updated; // [K*L, width]
  };

  // Queries are rotated at their true positions, the whole key cache at 0..L-1.
  const queryCos = ropeOverHeads(g, g.op("Gather", [rope.cos, recompute], { axis: 0 })); // [K,P,1,hd]
  const querySin = ropeOverHeads(g, g.op("Gather", [rope.sin, recompute], { axis: 0 }));
  const keyCos = ropeOverHeads(g, sliceRows(g, rope.cos, L)); // [L,1,hd]
  const keySin = ropeOverHeads(g, sliceRows(g, rope.sin, L));
  const bias = keyPaddingBias(g, seqLens, sliceRows(g, rope.positions, L), K, L); // [K,1,1,L]
  const dims = { nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: hd, R: K, L, queries: P, keys: L, softmax: opts.attentionSoftmax };

  const x = decoderBlocks(m, embed(m, g.op("GatherElements", [ids, recompute], { axis: 1 })), (layer, q, k, v) => {
    const keys = castIf(g, updateState(TRANSFORMER_CACHED_STATE.key(layer), k), stateType, "FLOAT");
    const values = castIf(g, updateState(TRANSFORMER_CACHED_STATE.value(layer), v), stateType, "FLOAT");
    const q4 = applyRope(g, reshape(g, q, [K, P, cfg.nHeads, hd]), queryCos, querySin, hd);
    const k4 = applyRope(g, reshape(g, keys, [K, L, cfg.nKvHeads, hd]), keyCos, keySin, hd);
    return attendRotated(g, q4, k4, reshape(g, values, [K, L, cfg.nKvHeads, hd]), bias, dims, m.compute);
  });

  // The codebook logits of the recomputed rows go into the logit cache; everything below reads the cache.
  const logitCache = updateState(TRANSFORMER_CACHED_STATE.logits, headLogits(m, x, codebookHead(m))); // [K*L, 8192]
  const maxLogit = castIf(g, g.op("ReduceMax", [logitCache], { axes: [1], keepdims: 0 }), stateType, "FLOAT"); // max is exact in any dtype
  const maxLogitKL = g.op("Reshape", [maxLogit, shapeOf(g, [K, L])], {}, outMaxLogit);
  recomputeSelection(g, maxLogitKL, seqLens, c.quantileRanks, sliceRows(g, rope.positions, L), outCodes, outQuantile);

  const branchLogits = unsqueeze(g, castIf(g, gatherRows(g, logitCache, targetRows), stateType, "FLOAT"), [0]); // [1,K,M,8192]
  const combined = combineBranches(g, branchLogits, unsqueeze(g, weights, [0])); // [1,M,8192]
  const img = sampleInverseCdf(g, combined, unsqueeze(g, uniforms, [0]), temperature, CODEBOOK_SIZE);
  g.op("Squeeze", [cast(g, img.tokens, "INT32"), i64(g, [0])], {}, outTokens);
  g.op("Squeeze", [img.confidence, i64(g, [0])], {}, outConfidence);
  return g;
}

/**
 * The ML-Cache rule over each branch's max logits x [K, L] (sampling/ml-cache.ts), evaluated here so that
 * only a byte per position crosses the wire instead of a float: with rank_i = #{j < seq_len : x_j < x_i},
 * x_i <= sorted(x)[lo] exactly when rank_i <= lo (likewise for hi), so code_i = [rank_i <= lo] +
 * [rank_i <= hi] and the two order statistics are the largest x of each group. Padded positions count as
 * +inf: they rank past every real one and get code 0. The counts are exact in fp32 (< 2^24); the pairwise
 * comparison is K*L^2 (52 M at L = 5120), which a GPU does in well under a millisecond and which avoids
 * TopK (TensorRT caps k at 3840).
 */
function recomputeSelection(g: GraphBuilder, x: string, seqLens: string, ranks: string, positions: string, outCodes: string, outQuantile: string): void {
  const valid = g.op("Less", [unsqueeze(g, positions, [0]), unsqueeze(g, cast(g, seqLens, "FLOAT"), [1])]); // [K,L]
  const xs = g.op("Where", [valid, x, f32(g, Number.POSITIVE_INFINITY)]);
  const below = g.op("Less", [unsqueeze(g, xs, [1]), unsqueeze(g, xs, [2])]); // [K,L(i),L(j)]: x_j < x_i
  const rank = g.op("ReduceSum", [cast(g, below, "FLOAT"), i64(g, [2])], { keepdims: 0 }); // [K,L]
  const r = cast(g, ranks, "FLOAT"); // [K,2]
  const within = (col: number) => g.op("Less", [rank, g.op("Add", [g.op("Gather", [r, i64(g, [col])], { axis: 1 }), f32(g, 0.5)])]); // [K,L]
  const inLow = within(0), inHigh = within(1);
  const codes = g.op("Add", [cast(g, inLow, "FLOAT"), cast(g, inHigh, "FLOAT")]);
  g.op("Cast", [codes], { to: ONNX_DTYPES.UINT8 }, outCodes);
  const largest = (sel: string) => g.op("ReduceMax", [g.op("Where", [sel, xs, f32(g, Number.NEGATIVE_INFINITY)])], { axes: [1], keepdims: 1 }); // [K,1]
  g.op("Concat", [largest(inLow), largest(inHigh)], { axis: 1 }, outQuantile);
}
