// Transformer weights by their checkpoint names: a seeded deterministic initialiser (dev models, tests),
// a Hugging Face safetensors checkpoint opened without loading it (the graph references its bytes in
// place), and a writer for synthetic checkpoints with the real names (tests, CI).

import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bf16ToFloat32, float32ToBf16 } from "../../lib/numeric";
import {
  floatsFromTensorBytes,
  readCheckpointIndex,
  readTensorBytes,
  tensorDataFromFloats,
  writeSafetensors,
  type SafetensorEntry,
  type SafetensorsDType,
  type TensorToWrite,
} from "../safetensors";
import {
  lladaConfigFromHf,
  lladaConfigToHf,
  lladaNames,
  lladaTensorShapes,
  reconcileLladaConfig,
  TRANSFORMER_PREFIX,
  validateLladaConfig,
  type LladaConfig,
} from "./config";
import { fnv1a, mulberry32 } from "../seeded-random";

export interface LladaTensor {
  shape: number[];
  data: Float32Array;
}
/** In-memory fp32 weights by checkpoint name. */
export type LladaWeights = Map<string, LladaTensor>;

/** A safetensors checkpoint, indexed but not loaded. `entries` is keyed by the canonical names. */
export interface LladaCheckpoint {
  kind: "safetensors";
  dir: string;
  config: LladaConfig;
  entries: Map<string, SafetensorEntry>;
  /** The dtype all tensors share, or "mixed". */
  dtype: SafetensorsDType | "mixed";
}

export function isCheckpoint(w: LladaWeights | LladaCheckpoint): w is LladaCheckpoint {
  return !(w instanceof Map) && (w as LladaCheckpoint).kind === "safetensors";
}

// ---- deterministic random numbers -------------------------------------------------------------------

/** Fills `out` with scale * N(0,1) (+ offset), Box-Muller over a per-name stream. */
function fillNormal(out: Float32Array, seed: number, scale: number, offset = 0): void {
  const u = mulberry32(seed);
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const t = 2 * Math.PI * u();
    out[i] = offset + scale * r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = offset + scale * r * Math.sin(t);
  }
}

/**
 * Seeded weights with the exact checkpoint names and shapes. Scales give a well-behaved toy model: unit
 * embeddings, norm weights 1 +- 0.1, projections ~1/sqrt(fan_in) (outputs into the residual stream
 * halved), attention that actually mixes positions, and an LM head with logit spread ~3 so the sampled
 * distributions are neither uniform nor one-hot over 8192 codes or the 134548-id vocabulary.
 */
export function seededLladaWeights(cfg: LladaConfig, seed = 1): LladaWeights {
  validateLladaConfig(cfg, { requireImageVocab: false });
  const out: LladaWeights = new Map();
  for (const [name, shape] of lladaTensorShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const s = fnv1a(name, seed);
    const fanIn = shape.length === 2 ? shape[1] : 1;
    if (name.endsWith("norm.weight") || name === lladaNames.lnF) fillNormal(data, s, 0.1, 1);
    else if (name === lladaNames.wte) fillNormal(data, s, 1);
    else if (name === lladaNames.head) fillNormal(data, s, 3 / Math.sqrt(fanIn));
    else if (/\.(q_proj|k_proj)\.weight$/.test(name)) fillNormal(data, s, 1.5 / Math.sqrt(fanIn));
    else if (/\.(attn_out|ff_out)\.weight$/.test(name)) fillNormal(data, s, 0.5 / Math.sqrt(fanIn));
    else fillNormal(data, s, 1 / Math.sqrt(fanIn));
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/** Throws one error naming every missing, unexpected or mis-shaped tensor. */
export function checkLladaWeights(cfg: LladaConfig, tensors: Map<string, { shape: number[] }>, where = "transformer weights"): void {
  const problems: string[] = [];
  const want = new Set<string>();
  for (const [name, shape] of lladaTensorShapes(cfg)) {
    want.add(name);
    const t = tensors.get(name);
    if (!t) problems.push(`missing ${name} [${shape}]`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) problems.push(`${name}: shape [${t.shape}], expected [${shape}]`);
  }
  for (const name of tensors.keys()) if (!want.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) {
    const shown = problems.slice(0, 12).join("; ");
    throw new Error(`${where}: ${problems.length} problem(s) against the LLaDA layout: ${shown}${problems.length > 12 ? "; ..." : ""}`);
  }
}

// ---- bf16 ------------------------------------------------------------------------------------------

/** The values after a round trip through bf16 (what a bf16 checkpoint of these weights holds). */
export function roundToBf16(x: Float32Array): Float32Array {
  return bf16ToFloat32(float32ToBf16(x));
}

export function roundWeightsToBf16(w: LladaWeights): LladaWeights {
  return new Map([...w].map(([k, t]) => [k, { shape: t.shape, data: roundToBf16(t.data) }]));
}

// ---- checkpoints -------------------------------------------------------------------------------------

/**
 * Opens a Hugging Face checkpoint directory (`config.json` + one or more `*.safetensors`) without loading
 * the weights. Names may carry the `model.transformer.` prefix (DiMOO, LLaDA) or just `transformer.`.
 * The config's widths are reconciled with the tensor shapes; names and shapes are checked.
 */
export async function openLladaCheckpoint(dir: string, opts: { config?: LladaConfig; maxPositions?: number } = {}): Promise<LladaCheckpoint> {
  let config = opts.config;
  const cfgPath = join(dir, "config.json");
  if (!config) {
    if (!existsSync(cfgPath)) throw new Error(`transformer checkpoint ${dir}: config.json is missing`);
    config = lladaConfigFromHf(JSON.parse(await readFile(cfgPath, "utf8")) as Record<string, unknown>, { maxPositions: opts.maxPositions });
  }
  const raw = await readCheckpointIndex(dir);
  const entries = new Map<string, SafetensorEntry>();
  const hasPrefixed = raw.has(lladaNames.wte);
  for (const [name, e] of raw) {
    let canonical = name;
    if (!hasPrefixed && name.startsWith("transformer.")) canonical = `model.${name}`;
    if (!canonical.startsWith(TRANSFORMER_PREFIX)) continue; // e.g. other heads of a multi-part repo
    entries.set(canonical, e);
  }
  config = reconcileLladaConfig(config, entries);
  checkLladaWeights(config, entries, `transformer checkpoint ${dir}`);
  const dtypes = new Set([...entries.values()].map((e) => e.dtype));
  const dtype = dtypes.size === 1 ? [...dtypes][0] : "mixed";
  return { kind: "safetensors", dir, config, entries, dtype };
}

/** Loads every tensor of a (small) checkpoint as fp32, for the reference forward pass. */
export async function loadLladaWeights(ckpt: LladaCheckpoint): Promise<LladaWeights> {
  const out: LladaWeights = new Map();
  for (const [name, e] of ckpt.entries) out.set(name, { shape: [...e.shape], data: floatsFromTensorBytes(await readTensorBytes(e), e.dtype, name) });
  return out;
}

export interface WriteCheckpointOptions {
  dtype?: "F32" | "BF16";
  /** Split into this many `model-0000i-of-0000n.safetensors` files with a `model.safetensors.index.json`. */
  shards?: number;
}

/**
 * Writes a checkpoint directory with the real layout: `config.json` (LLaDA key set) and the weights under
 * their `state_dict()` names, as one `model.safetensors` or as shards with an index.
 */
export async function writeLladaCheckpoint(dir: string, cfg: LladaConfig, weights: LladaWeights, opts: WriteCheckpointOptions = {}): Promise<string[]> {
  const dtype = opts.dtype ?? "BF16";
  const shards = Math.max(1, opts.shards ?? 1);
  checkLladaWeights(cfg, weights);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(lladaConfigToHf(cfg, dtype === "F32" ? "float32" : "bfloat16"), null, 2) + "\n");
  const order = lladaTensorShapes(cfg).map(([n]) => n);
  const bytesOf = (n: string) => weights.get(n)!.data.length * (dtype === "F32" ? 4 : 2);
  const total = order.reduce((a, n) => a + bytesOf(n), 0);
  if (shards > order.length) throw new Error(`cannot split ${order.length} tensors into ${shards} shards`);
  // Contiguous runs in state_dict order, balanced by bytes (a tensor goes where its midpoint falls);
  // when that leaves a shard empty (few huge tensors), split by count instead.
  let groups: string[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const n of order) {
    groups[Math.min(shards - 1, Math.floor(((acc + bytesOf(n) / 2) / total) * shards))].push(n);
    acc += bytesOf(n);
  }
  if (groups.some((g) => g.length === 0)) {
    const per = Math.ceil(order.length / shards);
    groups = Array.from({ length: shards }, (_, i) => order.slice(i * per, (i + 1) * per));
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards; i++) {
    const file = shards === 1 ? "model.safetensors" : `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const tensors: Record<string, TensorToWrite> = {};
    for (const n of groups[i]) {
      const t = weights.get(n)!;
      tensors[n] = { dtype, shape: t.shape, data: tensorDataFromFloats(t.data, dtype) };
      weightMap[n] = file;
    }
    await writeSafetensors(join(dir, file), tensors, { format: "pt" });
    files.push(file);
  }
  if (shards > 1)
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n");
  return files;
}
