// What one transformer call costs on a GPU, counted op by op from what the engine graphs compute
// (gpu-backend/src/builder/llada/graph.ts for the stateless model, cached-graph.ts for the ML-Cache one):
// FLOPs of every matmul and attention product, and the bytes a call must at least move through HBM
// (weights once per call; for the cached model also its K/V and logit state). Used by the simulated engine
// (step time grows with the tokens in the call) and by the GPU projection. Pure arithmetic.
import { DIMOO_TRANSFORMER_CONFIG, type LladaConfig } from "../../gpu-backend/src/builder/llada/config";
import { CODEBOOK_SIZE } from "../../gpu-backend/src/model/tokens";

/** Bytes of one bf16 value: weights, activations and the cached model's state in production. */
const BF16 = 2;

export interface CallCost {
  flops: number;
  /** Minimum HBM traffic of the call. */
  bytes: number;
}

/** Matmul FLOPs of one decoder layer's projections and MLP for `rows` token rows. */
function layerLinearFlops(cfg: LladaConfig, rows: number): number {
  const d = cfg.dModel;
  const kv = (cfg.nKvHeads * d) / cfg.nHeads;
  const attnProj = 2 * rows * (d * d + 2 * d * kv + d * d); // q, k, v, o
  const mlp = 2 * rows * 3 * d * cfg.mlpHidden; // gate, up, down
  return attnProj + mlp;
}

/** Body weights (every decoder layer), in parameters. */
export function bodyParams(cfg: LladaConfig = DIMOO_TRANSFORMER_CONFIG): number {
  const d = cfg.dModel;
  const kv = (cfg.nKvHeads * d) / cfg.nHeads;
  return cfg.nLayers * (2 * d * d + 2 * d * kv + 3 * d * cfg.mlpHidden + 2 * d);
}

/**
 * The stateless model (graph.ts): `rows` rows right-padded to `length` (TensorRT computes the padding too),
 * `imageTargets` gathered hidden states through the 8192-row codebook head, `textTargets` through the full
 * vocabulary. Attention is bidirectional over the padded length: 2·L²·d for QKᵀ and 2·L²·d for AV per layer.
 */
export function statelessCallCost(rows: number, length: number, imageTargets: number, textTargets = 0, cfg: LladaConfig = DIMOO_TRANSFORMER_CONFIG): CallCost {
  const d = cfg.dModel;
  const tokens = rows * length;
  const linear = cfg.nLayers * layerLinearFlops(cfg, tokens);
  const attention = cfg.nLayers * rows * 4 * length * length * d;
  const heads = 2 * d * (imageTargets * CODEBOOK_SIZE + textTargets * cfg.vocabSize);
  const weights = (bodyParams(cfg) + CODEBOOK_SIZE * d + (textTargets ? cfg.vocabSize * d : 0)) * BF16;
  // Activations: the residual stream in and out of each layer, K and V written and read once.
  const activations = cfg.nLayers * tokens * d * BF16 * 6;
  return { flops: linear + attention + heads, bytes: weights + activations };
}

/**
 * The cached model (cached-graph.ts): `branches` rows of length L, `recompute` positions per branch run
 * through the layers, their queries attend over all L keys; the per-layer K/V state is read for attention,
 * RoPE'd whole and written back with the new rows (a full copy per step, as ScatterND produces a new
 * tensor); the codebook head runs on the recomputed rows and the [K, L, 8192] logit state is read for the
 * per-position max logit and written back.
 */
export function cachedCallCost(branches: number, length: number, recompute: number, cfg: LladaConfig = DIMOO_TRANSFORMER_CONFIG): CallCost {
  const d = cfg.dModel;
  const kv = (cfg.nKvHeads * d) / cfg.nHeads;
  const rows = branches * recompute;
  const linear = cfg.nLayers * layerLinearFlops(cfg, rows);
  const attention = cfg.nLayers * branches * 4 * recompute * length * d;
  const head = 2 * d * rows * CODEBOOK_SIZE;
  const weights = (bodyParams(cfg) + CODEBOOK_SIZE * d) * BF16;
  const kvState = cfg.nLayers * 2 * branches * length * kv * BF16; // K and V of every layer
  const logitState = branches * length * CODEBOOK_SIZE * BF16;
  // K/V: read for attention, read + written by the scatter, read + written by RoPE over the key cache.
  const stateTraffic = 5 * kvState + 2 * logitState;
  return { flops: linear + attention + head, bytes: weights + stateTraffic + cfg.nLayers * rows * d * BF16 * 6 };
}

/** Time of a call at `flopsPerSecond` sustained and `bytesPerSecond` of HBM: whichever bound is hit. */
export function rooflineSeconds(cost: CallCost, flopsPerSecond: number, bytesPerSecond: number): number {
  return Math.max(cost.flops / flopsPerSecond, cost.bytes / bytesPerSecond);
}
