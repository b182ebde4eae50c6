// VQ-GAN weights by their diffusers names: a seeded initialiser (dev models, tests) and a reader/writer for
// the Hugging Face layout (`vqvae/config.json` + `vqvae/diffusion_pytorch_model.safetensors`). Weights
// are held as fp32 (the reference runs the VQ in fp32; 146 M params = 585 MB for the real model), whatever
// the checkpoint's dtype (F32, F16 or BF16).

import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  floatsFromTensorBytes,
  readSafetensorsHeader,
  readTensorBytes,
  tensorDataFromFloats,
  writeSafetensors,
  type SafetensorsDType,
  type TensorToWrite,
} from "../safetensors";
import { validateVqConfig, vqConfigFromDiffusers, vqConfigToDiffusers, vqTensorShapes, type VqConfig } from "./config";
import { fnv1a, mulberry32 } from "../seeded-random";

export interface VqTensor {
  shape: number[];
  data: Float32Array;
}
export type VqWeights = Map<string, VqTensor>;

export const VQ_WEIGHTS_FILE = "diffusion_pytorch_model.safetensors";
const VQ_WEIGHTS_FILE_FP16 = "diffusion_pytorch_model.fp16.safetensors";

// ---- deterministic random numbers -------------------------------------------------------------------

function normals(n: number, seed: number): Float64Array {
  const u = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - u(); // (0, 1]
    const u2 = u();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * Seeded weights with the exact diffusers names and shapes. Scales keep activations O(1) through the
 * network (GroupNorm renormalises each resnet), the codebook matches the spread of the encoder's
 * latents (so many distinct codes are used) and the decoder output is centred on 0.5, so decoded pixels
 * cover the whole 0..255 range without saturating. Each tensor has its own stream (seed x name), so
 * the values do not depend on the order tensors are created in.
 */
export function seededVqWeights(cfg: VqConfig, seed = 1): VqWeights {
  validateVqConfig(cfg);
  const out: VqWeights = new Map();
  for (const [name, shape] of vqTensorShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const z = normals(n, fnv1a(name, seed));
    const data = new Float32Array(n);
    const isNorm = /norm(1|2|_out)\.(weight|bias)$/.test(name);
    if (name === "quantize.embedding.weight") {
      for (let i = 0; i < n; i++) data[i] = 0.6 * z[i];
    } else if (isNorm && name.endsWith(".weight")) {
      for (let i = 0; i < n; i++) data[i] = 1 + 0.1 * z[i];
    } else if (isNorm) {
      for (let i = 0; i < n; i++) data[i] = 0.05 * z[i];
    } else if (name.endsWith(".bias")) {
      const centre = name === "decoder.conv_out.bias" ? 0.5 : 0;
      for (let i = 0; i < n; i++) data[i] = centre + 0.02 * z[i];
    } else {
      // conv weight [out, in, k, k]
      const fanIn = shape[1] * shape[2] * shape[3];
      const gain = name === "decoder.conv_out.weight" ? 0.4 : name.endsWith("conv2.weight") ? 0.7 : 1;
      const s = gain / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) data[i] = s * z[i];
    }
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/** Throws one error naming every missing, unexpected or mis-shaped tensor. */
export function checkVqWeights(cfg: VqConfig, names: Map<string, { shape: number[] }>, where = "VQ weights"): void {
  const expected = vqTensorShapes(cfg);
  const problems: string[] = [];
  const want = new Set<string>();
  for (const [name, shape] of expected) {
    want.add(name);
    const t = names.get(name);
    if (!t) problems.push(`missing ${name} [${shape}]`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      problems.push(`${name}: shape [${t.shape}], expected [${shape}]`);
  }
  for (const name of names.keys()) if (!want.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) {
    const shown = problems.slice(0, 12).join("; ");
    throw new Error(`${where}: ${problems.length} problem(s) against the diffusers VQModel layout: ${shown}${problems.length > 12 ? "; ..." : ""}`);
  }
}

// ---- checkpoint I/O --------------------------------------------------------------------------------

/** The weights file of a diffusers `vqvae/` folder, or null. */
export function vqWeightsFile(dir: string): string | null {
  for (const f of [VQ_WEIGHTS_FILE, VQ_WEIGHTS_FILE_FP16]) if (existsSync(join(dir, f))) return join(dir, f);
  return null;
}

/** Reads `<dir>/config.json` and `<dir>/diffusion_pytorch_model.safetensors` (a diffusers `vqvae/`). */
export async function readVqCheckpoint(dir: string): Promise<{ config: VqConfig; weights: VqWeights; dtype: SafetensorsDType }> {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new Error(`VQ checkpoint: missing ${cfgPath}`);
  const file = vqWeightsFile(dir);
  if (!file) throw new Error(`VQ checkpoint: missing ${join(dir, VQ_WEIGHTS_FILE)}`);
  const config = vqConfigFromDiffusers(JSON.parse(await readFile(cfgPath, "utf8")) as Record<string, unknown>);
  const entries = await readSafetensorsHeader(file);
  const byName = new Map(entries.map((e) => [e.name, e]));
  checkVqWeights(config, byName, file);
  const weights: VqWeights = new Map();
  for (const [name] of vqTensorShapes(config)) {
    const e = byName.get(name)!;
    weights.set(name, { shape: [...e.shape], data: floatsFromTensorBytes(await readTensorBytes(e), e.dtype, name) });
  }
  return { config, weights, dtype: entries[0]?.dtype ?? "F32" };
}

/** Writes a diffusers `vqvae/` folder (config.json + safetensors) from a config and weights. */
export async function writeVqCheckpoint(
  dir: string,
  config: VqConfig,
  weights: VqWeights,
  opts: { dtype?: "F32" | "F16" | "BF16" } = {},
): Promise<void> {
  checkVqWeights(config, weights);
  const dtype = opts.dtype ?? "F32";
  await mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of weights) tensors[name] = { dtype, shape: t.shape, data: tensorDataFromFloats(t.data, dtype) };
  await writeSafetensors(join(dir, VQ_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeFile(join(dir, "config.json"), JSON.stringify(vqConfigToDiffusers(config), null, 2) + "\n");
}
