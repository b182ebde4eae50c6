import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DIMOO_TRANSFORMER_CONFIG,
  devTransformerConfig,
  lladaConfigFromHf,
  lladaConfigToHf,
  lladaParamCount,
  lladaTensorShapes,
  reconcileLladaConfig,
} from "../../../gpu-backend/src/builder/llada/config";
import { checkLladaWeights, seededLladaWeights } from "../../../gpu-backend/src/builder/llada/weights";
import { bf16ToFloat32, float32ToBf16 } from "../../../gpu-backend/src/lib/numeric";
import { BOA, BOI, CODEBOOK_SIZE, EOA, EOI, IMAGE_OFFSET, MASK, NEWLINE, PAD, UNCONDITION, VOCAB_SIZE } from "../../../gpu-backend/src/model/tokens";

const layout = JSON.parse(readFileSync(new URL("../../../docs/reference/checkpoint-layout.json", import.meta.url), "utf8")).dimoo_llm as {
  config_assumed: Record<string, unknown>;
  n_tensors: number;
  n_params: number;
  tensors: Array<{ name: string; shape: number[] }>;
};

/** The 41 keys create_model_config_from_pretrained_config reads (docs/model.md §8.1). */
const READ_KEYS = `d_model n_heads n_kv_heads n_layers mlp_ratio mlp_hidden_size activation_type block_type block_group_size alibi
alibi_bias_max rope rope_full_precision flash_attention attention_dropout multi_query_attention attention_layer_norm
residual_dropout embedding_dropout input_emb_norm layer_norm_type layer_norm_with_affine rms_norm_eps
attention_layer_norm_with_affine max_sequence_length rope_theta include_qkv_bias include_bias bias_for_layer_norm
scale_logits vocab_size embedding_size weight_tying eos_token_id pad_token_id mask_token_id init_device init_fn
init_std init_cutoff_factor precision`.split(/\s+/);

describe("LLaDA config", () => {
  it("reads the DiMOO config.json into the real widths and reproduces all 291 tensor names and shapes", () => {
    const cfg = lladaConfigFromHf(layout.config_assumed);
    expect(cfg).toEqual(DIMOO_TRANSFORMER_CONFIG);
    const shapes = lladaTensorShapes(cfg);
    expect(shapes.length).toBe(layout.n_tensors);
    expect(new Map(shapes)).toEqual(new Map(layout.tensors.map((t) => [t.name, t.shape])));
    expect(lladaParamCount(cfg)).toBe(layout.n_params);
  });

  it("applies the builder rules: embedding_size over vocab_size, null n_kv_heads and mlp_hidden_size, ModelConfig defaults", () => {
    const base = lladaConfigToHf(devTransformerConfig());
    expect(lladaConfigFromHf({ ...base, vocab_size: 126464, embedding_size: 134548 }).vocabSize).toBe(134548);
    expect(lladaConfigFromHf({ ...base, embedding_size: null, vocab_size: 134548 }).vocabSize).toBe(134548);
    expect(lladaConfigFromHf({ ...base, n_kv_heads: null }).nKvHeads).toBe(4);
    expect(lladaConfigFromHf({ ...base, n_kv_heads: 2 }).nKvHeads).toBe(2);
    expect(lladaConfigFromHf({ ...base, mlp_hidden_size: null, mlp_ratio: 3 }).mlpHidden).toBe(192);
    // An absent key means the ModelConfig default, e.g. include_bias true and weight_tying true.
    const { include_bias: _a, ...noBias } = base;
    expect(() => lladaConfigFromHf(noBias)).toThrow(/include_bias=true/);
    const { rope_theta: _b, ...noTheta } = base;
    expect(lladaConfigFromHf(noTheta).ropeTheta).toBe(10000);
    expect(() => lladaConfigFromHf({ ...base, weight_tying: true })).toThrow(/weight_tying/);
    expect(() => lladaConfigFromHf({ ...base, block_type: "sequential", alibi: true })).toThrow(/block_type.*alibi/);
    expect(() => lladaConfigFromHf({ ...base, model_type: "llama" })).toThrow(/model_type/);
  });

  it("writes config.json with the LLaDA-8B key set and reads it back unchanged", () => {
    const json = lladaConfigToHf(devTransformerConfig());
    for (const k of READ_KEYS) expect(Object.keys(json)).toContain(k);
    for (const k of ["use_cache", "architectures", "model_type", "torch_dtype"]) expect(Object.keys(json)).toContain(k);
    expect(lladaConfigFromHf(json)).toEqual(devTransformerConfig());
    expect(json).toMatchObject({ block_type: "llama", layer_norm_type: "rms", rope_theta: 500000, rms_norm_eps: 1e-5, mask_token_id: MASK, vocab_size: 134548 });
  });

  it("prefers the checkpoint shapes and rejects a vocabulary without the image codes", () => {
    const cfg = devTransformerConfig();
    const shapes = new Map(lladaTensorShapes({ ...cfg, mlpHidden: 96, nKvHeads: 2 }).map(([n, s]) => [n, { shape: s }]));
    expect(reconcileLladaConfig(cfg, shapes)).toMatchObject({ mlpHidden: 96, nKvHeads: 2 });
    const llada = new Map(lladaTensorShapes({ ...cfg, vocabSize: 126464 }).map(([n, s]) => [n, { shape: s }]));
    expect(() => reconcileLladaConfig(cfg, llada)).toThrow(/no image-code rows/);
  });

  it("dev config: real vocabulary and special ids, tiny widths, under 100 MB of fp32", () => {
    const cfg = devTransformerConfig();
    expect(cfg.vocabSize).toBe(VOCAB_SIZE);
    for (const id of [MASK, NEWLINE, BOI, EOI, UNCONDITION, BOA, EOA, PAD, IMAGE_OFFSET, IMAGE_OFFSET + CODEBOOK_SIZE - 1]) expect(id).toBeLessThan(cfg.vocabSize);
    expect(lladaParamCount(cfg) * 4).toBeLessThan(75e6);
  });
});

describe("LLaDA weights", () => {
  const cfg = { ...devTransformerConfig(), nLayers: 1 };
  const digest = (w: ReturnType<typeof seededLladaWeights>) => {
    const h = createHash("sha256");
    for (const [n, t] of w) h.update(n).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return h.digest("hex");
  };

  it("seeded initialiser is deterministic, per seed, with the exact names and shapes", () => {
    const a = seededLladaWeights(cfg, 1);
    checkLladaWeights(cfg, a);
    expect(digest(seededLladaWeights(cfg, 1))).toBe(digest(a));
    expect(digest(seededLladaWeights(cfg, 2))).not.toBe(digest(a));
    // one stream per tensor name: a layer's weights do not depend on how many layers come before/after
    const two = seededLladaWeights({ ...cfg, nLayers: 2 }, 1);
    expect(two.get("model.transformer.blocks.0.q_proj.weight")!.data).toEqual(a.get("model.transformer.blocks.0.q_proj.weight")!.data);
    const head = a.get("model.transformer.ff_out.weight")!.data;
    let ss = 0;
    for (let i = 0; i < 64 * 1000; i++) ss += head[i] * head[i];
    expect(Math.sqrt(ss / 1000)).toBeGreaterThan(2.5); // logit spread ~3 for unit-RMS inputs
  });

  it("converts to bf16 with round-to-nearest-even", () => {
    const x = Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 1 + 2 ** -7 + 2 ** -9, 65504, Infinity, NaN]);
    const back = bf16ToFloat32(float32ToBf16(x));
    expect(Array.from(back.slice(0, 7))).toEqual([1, 1, 1 + 4 * 2 ** -8, -2.5, 1 + 2 ** -7, 65536, Infinity]);
    expect(Number.isNaN(back[7])).toBe(true);
  });
});
