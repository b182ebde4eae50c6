// The LLaDA / Lumina-DiMOO transformer configuration: read from a Hugging Face `config.json` with the
// builder rules of docs/model.md §8, the exact tensor names and shapes of
// `LLaDAForMultiModalGeneration.state_dict()`, and the tiny dev config (real vocabulary, tiny widths).

import { CODEBOOK_SIZE, EOS, IMAGE_OFFSET, MASK, VOCAB_SIZE } from "../../model/tokens";

export interface LladaConfig {
  dModel: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention when < nHeads; DiMOO has nHeads). */
  nKvHeads: number;
  nLayers: number;
  /** Gated-MLP hidden width (`mlp_hidden_size`, or `mlp_ratio * d_model`). */
  mlpHidden: number;
  /** Logit width = embedding rows (`embedding_size or vocab_size`); 134548 for DiMOO. */
  vocabSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** `max_sequence_length` of config.json (informational: RoPE is not limited to it). */
  maxSequenceLength: number;
  /**
   * Engine-only: rows of the precomputed RoPE cos/sin tables in the graph, i.e. the longest row L the
   * engine accepts. DiMOO runs 4.2k-4.9k tokens for one 1024-class image and ~8.5k for image-to-image.
   */
  maxPositions: number;
  maskTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

export const DEFAULT_MAX_POSITIONS = 16384;

/** Lumina-DiMOO's transformer (LLaDA-8B widths, DiMOO vocabulary). */
export const DIMOO_TRANSFORMER_CONFIG: Readonly<LladaConfig> = Object.freeze({
  dModel: 4096,
  nHeads: 32,
  nKvHeads: 32,
  nLayers: 32,
  mlpHidden: 12288,
  vocabSize: VOCAB_SIZE,
  ropeTheta: 500000,
  rmsNormEps: 1e-5,
  maxSequenceLength: 4096,
  maxPositions: DEFAULT_MAX_POSITIONS,
  maskTokenId: MASK,
  eosTokenId: EOS,
  padTokenId: EOS,
});

/**
 * The tiny dev transformer: the real vocabulary (134548 ids: every special id and all 8192 image codes
 * are valid) with tiny widths, so the fp32 model is ~71 MB and a 1024x1024 step runs on 2 CPU cores.
 */
export function devTransformerConfig(): LladaConfig {
  return {
    ...DIMOO_TRANSFORMER_CONFIG,
    dModel: 64,
    nHeads: 4,
    nKvHeads: 4,
    nLayers: 2,
    mlpHidden: 128,
  };
}

export function headDim(cfg: LladaConfig): number {
  return cfg.dModel / cfg.nHeads;
}

export function validateLladaConfig(cfg: LladaConfig, opts: { requireImageVocab?: boolean } = {}): void {
  const bad = (msg: string) => {
    throw new Error(`invalid LLaDA config: ${msg}`);
  };
  for (const k of ["dModel", "nHeads", "nKvHeads", "nLayers", "mlpHidden", "vocabSize", "maxPositions"] as const)
    if (!Number.isInteger(cfg[k]) || cfg[k] <= 0) bad(`${k} must be a positive integer, got ${cfg[k]}`);
  if (cfg.dModel % cfg.nHeads !== 0) bad(`d_model ${cfg.dModel} is not a multiple of n_heads ${cfg.nHeads}`);
  if (headDim(cfg) % 2 !== 0) bad(`head dim ${headDim(cfg)} must be even for rotate-half RoPE`);
  if (cfg.nHeads % cfg.nKvHeads !== 0) bad(`n_heads ${cfg.nHeads} is not a multiple of n_kv_heads ${cfg.nKvHeads}`);
  if (opts.requireImageVocab !== false && cfg.vocabSize < IMAGE_OFFSET + CODEBOOK_SIZE)
    bad(`vocabulary ${cfg.vocabSize} has no image-code rows [${IMAGE_OFFSET}, ${IMAGE_OFFSET + CODEBOOK_SIZE}) (DiMOO needs ${VOCAB_SIZE})`);
  if (!(cfg.ropeTheta > 0)) bad(`rope_theta must be > 0`);
  if (!(cfg.rmsNormEps > 0)) bad(`rms_norm_eps must be > 0`);
}

/**
 * `ModelConfig` dataclass defaults (LLaDA's configuration_llada.py, OLMo-derived): `LLaDAConfig(**json)`
 * starts from these and overrides them with every key in the JSON, so an absent key means this value.
 */
export const LLADA_MODEL_CONFIG_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  d_model: 768,
  n_heads: 12,
  n_kv_heads: null,
  n_layers: 12,
  mlp_ratio: 4,
  mlp_hidden_size: null,
  activation_type: "swiglu",
  block_type: "sequential",
  block_group_size: 1,
  alibi: false,
  alibi_bias_max: 8.0,
  rope: false,
  rope_full_precision: true,
  flash_attention: false,
  attention_dropout: 0.1,
  multi_query_attention: null,
  attention_layer_norm: false,
  residual_dropout: 0.1,
  embedding_dropout: 0.1,
  input_emb_norm: false,
  layer_norm_type: "default",
  layer_norm_with_affine: true,
  rms_norm_eps: 1e-5,
  attention_layer_norm_with_affine: true,
  max_sequence_length: 1024,
  rope_theta: 10000.0,
  include_qkv_bias: false,
  include_bias: true,
  bias_for_layer_norm: null,
  scale_logits: false,
  vocab_size: 50257,
  embedding_size: 50304,
  weight_tying: true,
  eos_token_id: 50256,
  pad_token_id: 50256,
  mask_token_id: 50256,
});

/** Settings the engine implements; any other value of these keys is rejected. */
const REQUIRED: Record<string, unknown> = {
  block_type: "llama",
  layer_norm_type: "rms",
  activation_type: "silu",
  rope: true,
  alibi: false,
  weight_tying: false,
  include_bias: false,
  include_qkv_bias: false,
  scale_logits: false,
  input_emb_norm: false,
  attention_layer_norm: false,
  layer_norm_with_affine: true,
  block_group_size: 1,
};

function num(json: Record<string, unknown>, key: string): number | null {
  const v = json[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`config.json: ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Reads a Hugging Face LLaDA `config.json` (model_type "llada"): absent keys take the `ModelConfig`
 * defaults, then the builder rules apply: logit width and embedding rows = `embedding_size or
 * vocab_size`; `n_kv_heads` null = `n_heads` (`multi_query_attention` true = 1); `mlp_hidden_size` null =
 * `mlp_ratio * d_model`. Switches the engine does not implement (biases, alibi, tied head, scaled logits,
 * other block, norm or activation types, no RoPE) are rejected. Widths should afterwards be checked
 * against the tensor shapes with `reconcileLladaConfig`, which prefers the shapes; the vocabulary floor
 * (the image-code rows must exist) is checked there and by the graph builder.
 */
export function lladaConfigFromHf(json: Record<string, unknown>, opts: { maxPositions?: number } = {}): LladaConfig {
  if (json.model_type !== undefined && json.model_type !== "llada")
    throw new Error(`config.json: model_type ${JSON.stringify(json.model_type)} is not "llada"`);
  const m: Record<string, unknown> = { ...LLADA_MODEL_CONFIG_DEFAULTS };
  for (const [k, v] of Object.entries(json)) if (v !== undefined) m[k] = v;
  const unsupported: string[] = [];
  for (const [k, want] of Object.entries(REQUIRED)) if (m[k] !== want) unsupported.push(`${k}=${JSON.stringify(m[k])} (need ${JSON.stringify(want)})`);
  const normBias = m.bias_for_layer_norm === null ? m.include_bias : m.bias_for_layer_norm;
  if (normBias !== false) unsupported.push(`bias_for_layer_norm=${JSON.stringify(m.bias_for_layer_norm)} (need false)`);
  if (unsupported.length) throw new Error(`config.json: unsupported LLaDA settings: ${unsupported.join(", ")}`);

  const dModel = num(m, "d_model")!;
  const nHeads = num(m, "n_heads")!;
  const nKvHeads = m.multi_query_attention === true ? 1 : (num(m, "n_kv_heads") ?? nHeads);
  const mlpHidden = num(m, "mlp_hidden_size") ?? num(m, "mlp_ratio")! * dModel;
  const vocabSize = num(m, "embedding_size") ?? num(m, "vocab_size");
  if (vocabSize === null) throw new Error("config.json: embedding_size and vocab_size are both null");
  const cfg: LladaConfig = {
    dModel,
    nHeads,
    nKvHeads,
    nLayers: num(m, "n_layers")!,
    mlpHidden,
    vocabSize,
    ropeTheta: num(m, "rope_theta")!,
    rmsNormEps: num(m, "rms_norm_eps")!,
    maxSequenceLength: num(m, "max_sequence_length")!,
    maxPositions: opts.maxPositions ?? DEFAULT_MAX_POSITIONS,
    maskTokenId: num(m, "mask_token_id") ?? MASK,
    eosTokenId: num(m, "eos_token_id") ?? EOS,
    padTokenId: num(m, "pad_token_id") ?? EOS,
  };
  validateLladaConfig(cfg, { requireImageVocab: false });
  return cfg;
}

/**
 * A complete `config.json` with the LLaDA-8B key set (the 41 keys `create_model_config_from_pretrained_config`
 * reads plus use_cache, architectures, model_type, torch_dtype, transformers_version).
 */
export function lladaConfigToHf(cfg: LladaConfig, torchDtype: "float32" | "bfloat16" = "bfloat16"): Record<string, unknown> {
  return {
    activation_type: "silu",
    alibi: false,
    alibi_bias_max: 8.0,
    architectures: ["LLaDAForMultiModalGeneration"],
    attention_dropout: 0.0,
    attention_layer_norm: false,
    attention_layer_norm_with_affine: true,
    bias_for_layer_norm: false,
    block_group_size: 1,
    block_type: "llama",
    d_model: cfg.dModel,
    embedding_dropout: 0.0,
    embedding_size: cfg.vocabSize,
    eos_token_id: cfg.eosTokenId,
    flash_attention: false,
    include_bias: false,
    include_qkv_bias: false,
    init_cutoff_factor: null,
    init_device: "meta",
    init_fn: "mitchell",
    init_std: 0.02,
    input_emb_norm: false,
    layer_norm_type: "rms",
    layer_norm_with_affine: true,
    mask_token_id: cfg.maskTokenId,
    max_sequence_length: cfg.maxSequenceLength,
    mlp_hidden_size: cfg.mlpHidden,
    mlp_ratio: Math.max(1, Math.round(cfg.mlpHidden / cfg.dModel)),
    model_type: "llada",
    multi_query_attention: null,
    n_heads: cfg.nHeads,
    n_kv_heads: cfg.nKvHeads,
    n_layers: cfg.nLayers,
    pad_token_id: cfg.padTokenId,
    precision: "amp_bf16",
    residual_dropout: 0.0,
    rms_norm_eps: cfg.rmsNormEps,
    rope: true,
    rope_full_precision: true,
    rope_theta: cfg.ropeTheta,
    scale_logits: false,
    torch_dtype: torchDtype,
    transformers_version: "4.46.2",
    use_cache: false,
    vocab_size: cfg.vocabSize,
    weight_tying: false,
  };
}

// ---- tensor names ------------------------------------------------------------------------------------

/** The prefix of every tensor in `LLaDAForMultiModalGeneration.state_dict()`. */
export const TRANSFORMER_PREFIX = "model.transformer.";

export const lladaNames = {
  wte: `${TRANSFORMER_PREFIX}wte.weight`,
  lnF: `${TRANSFORMER_PREFIX}ln_f.weight`,
  head: `${TRANSFORMER_PREFIX}ff_out.weight`,
  block: (i: number) => {
    const b = `${TRANSFORMER_PREFIX}blocks.${i}.`;
    return {
      attnNorm: `${b}attn_norm.weight`,
      q: `${b}q_proj.weight`,
      k: `${b}k_proj.weight`,
      v: `${b}v_proj.weight`,
      attnOut: `${b}attn_out.weight`,
      ffNorm: `${b}ff_norm.weight`,
      ffProj: `${b}ff_proj.weight`,
      upProj: `${b}up_proj.weight`,
      ffOut: `${b}ff_out.weight`,
    };
  },
};

export type TensorShapeList = Array<[name: string, shape: number[]]>;

/** Every tensor of the checkpoint with its shape (nn.Linear weights are [out, in]); 9*n_layers + 3 entries. */
export function lladaTensorShapes(cfg: LladaConfig): TensorShapeList {
  const d = cfg.dModel;
  const kv = cfg.nKvHeads * headDim(cfg);
  const h = cfg.mlpHidden;
  const out: TensorShapeList = [[lladaNames.wte, [cfg.vocabSize, d]]];
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = lladaNames.block(i);
    out.push(
      [b.attnNorm, [d]],
      [b.q, [d, d]],
      [b.k, [kv, d]],
      [b.v, [kv, d]],
      [b.attnOut, [d, d]],
      [b.ffNorm, [d]],
      [b.ffProj, [h, d]],
      [b.upProj, [h, d]],
      [b.ffOut, [d, h]],
    );
  }
  out.push([lladaNames.lnF, [d]], [lladaNames.head, [cfg.vocabSize, d]]);
  return out;
}

export function lladaParamCount(cfg: LladaConfig): number {
  return lladaTensorShapes(cfg).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
}

/**
 * Makes the widths agree with the checkpoint's tensor shapes ("prefer the safetensors shapes of wte and
 * ff_out"): vocabulary and d_model from wte, the MLP width from ff_proj, the KV heads from k_proj.
 * Throws when the config and the shapes cannot be reconciled.
 */
export function reconcileLladaConfig(cfg: LladaConfig, shapes: Map<string, { shape: number[] }>): LladaConfig {
  const shapeOf = (n: string) => {
    const s = shapes.get(n)?.shape;
    if (!s) throw new Error(`checkpoint has no tensor ${n}`);
    return s;
  };
  const [vocab, d] = shapeOf(lladaNames.wte);
  const [headRows, headD] = shapeOf(lladaNames.head);
  if (headRows !== vocab || headD !== d) throw new Error(`LM head ${lladaNames.head} [${headRows},${headD}] does not match wte [${vocab},${d}]`);
  const b0 = lladaNames.block(0);
  const [mlp] = shapeOf(b0.ffProj);
  let nLayers = 0;
  while (shapes.has(lladaNames.block(nLayers).q)) nLayers++;
  const out: LladaConfig = { ...cfg, vocabSize: vocab, dModel: d, mlpHidden: mlp };
  if (d !== cfg.dModel && d % cfg.nHeads !== 0) throw new Error(`d_model ${d} from wte is not a multiple of n_heads ${cfg.nHeads}`);
  const [kvRows] = shapeOf(b0.k);
  const hd = d / out.nHeads;
  out.nKvHeads = kvRows / hd;
  if (nLayers !== cfg.nLayers) throw new Error(`config.json says n_layers ${cfg.nLayers}, the checkpoint has ${nLayers} blocks`);
  validateLladaConfig(out);
  return out;
}
