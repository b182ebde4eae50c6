// A throw-away model repository whose transformers are the dev model made wider and deeper: same builder,
// same graphs, same seeded-weight recipe, only the widths differ. It exists so that benchmarks
// (scripts/bench-ml-cache.ts) can run a step whose cost is the transformer's arithmetic, as it is at real
// size, rather than the fixed per-position traffic of the tiny dev model. The VQ models, the tokenizer and
// the VQ configs are the dev repository's, hard-linked; the transformers are built in memory (fp32 weights
// into model.onnx.data) and the cached model's config gets the state widths of the scaled config.

import { copyFile, link, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildCachedTransformerModel, buildTransformerModel } from "../builder/llada/model-file";
import { devTransformerConfig, validateLladaConfig, type LladaConfig } from "../builder/llada/config";
import { seededLladaWeights } from "../builder/llada/weights";
import { renderDevModelConfig } from "../builder/repository/model-config";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../engine/contract";
import { DEV_MODEL_REPOSITORY, DEV_TRANSFORMER_SEED, ensureDevModels } from "./build-dev-models";

export interface TransformerWidths {
  dModel: number;
  nLayers: number;
  /** Default: dModel / 128, the real model's head dimension (at least one head). */
  nHeads?: number;
  /** Default: 3 x dModel, the real model's ratio (12288 / 4096). */
  mlpHidden?: number;
}

/** The dev config with other widths (the real vocabulary, RoPE and norms are unchanged). */
export function scaledTransformerConfig(w: TransformerWidths): LladaConfig {
  const nHeads = w.nHeads ?? Math.max(1, Math.floor(w.dModel / 128));
  const cfg = { ...devTransformerConfig(), dModel: w.dModel, nLayers: w.nLayers, nHeads, nKvHeads: nHeads, mlpHidden: w.mlpHidden ?? 3 * w.dModel };
  validateLladaConfig(cfg);
  return cfg;
}

async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch {
    await copyFile(src, dst);
  }
}

/** Links every file of `from` (not recursive) into `to`. */
async function linkFiles(from: string, to: string, skip: (f: string) => boolean = () => false): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) if (e.isFile() && !skip(e.name)) await linkOrCopy(join(from, e.name), join(to, e.name));
}

/**
 * Writes a repository at `dir` (created; the caller removes it) serving the dev VQ models and both
 * transformers at `cfg`'s widths.
 */
export async function buildScaledDevRepository(dir: string, cfg: LladaConfig, log: (m: string) => void = () => {}): Promise<void> {
  await ensureDevModels({ log: () => {} });
  for (const m of [VQ_ENCODER_MODEL, VQ_DECODER_MODEL]) {
    await linkFiles(join(DEV_MODEL_REPOSITORY, m), join(dir, m));
    await linkFiles(join(DEV_MODEL_REPOSITORY, m, "1"), join(dir, m, "1"));
  }
  await linkFiles(join(DEV_MODEL_REPOSITORY, TRANSFORMER_MODEL), join(dir, TRANSFORMER_MODEL)); // config.pbtxt, tokenizer.json
  await mkdir(join(dir, TRANSFORMER_CACHED_MODEL), { recursive: true });
  await writeFile(join(dir, TRANSFORMER_CACHED_MODEL, "config.pbtxt"), renderDevModelConfig(TRANSFORMER_CACHED_MODEL, cfg));
  const t0 = performance.now();
  const weights = seededLladaWeights(cfg, DEV_TRANSFORMER_SEED);
  await buildTransformerModel({ config: cfg, weights, dtype: "fp32", outDir: join(dir, TRANSFORMER_MODEL, "1") });
  await buildCachedTransformerModel({ config: cfg, weights, dtype: "fp32", outDir: join(dir, TRANSFORMER_CACHED_MODEL, "1") });
  log(`built the transformers (d_model ${cfg.dModel}, ${cfg.nLayers} layers, ${cfg.nHeads} heads, MLP ${cfg.mlpHidden}) in ${((performance.now() - t0) / 1000).toFixed(1)} s into ${dir}`);
}

/** Removes a repository written by buildScaledDevRepository. */
export async function removeScaledDevRepository(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
