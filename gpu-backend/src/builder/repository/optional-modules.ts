// Modules other engineers own that the build steps use once they exist: the transformer graph builder
// (gpu-backend/src/builder/llada/) and the dev tokenizer (gpu-backend/src/model/dev-tokenizer.ts). They are
// found by reading the sources for the exported names and imported dynamically, so the dev-model
// generator and build:engines work (and say what they skip) before those modules land.

import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const TRANSFORMER_DIR = join(SRC, "builder/llada");
export const TOKENIZER_FILE = join(SRC, "model/dev-tokenizer.ts");

/**
 * What the builds use from the transformer graph builder (gpu-backend/src/builder/llada):
 * `buildTransformerModel({config?, weights, dtype: "fp32" | "bf16", outDir})` and the same for the cached
 * (ML-Cache) model, with weights either in memory (`seededLladaWeights(config, seed)`) or a checkpoint
 * opened in place (`openLladaCheckpoint(dir)`, written by `writeLladaCheckpoint` for the dev models).
 */
export interface TransformerBuilder {
  buildTransformerModel(args: { config?: unknown; weights: unknown; dtype: "fp32" | "bf16"; outDir: string }): Promise<unknown>;
  buildCachedTransformerModel(args: { config?: unknown; weights: unknown; dtype: "fp32" | "bf16"; outDir: string }): Promise<unknown>;
  devTransformerConfig(): unknown;
  seededLladaWeights(config: unknown, seed?: number): unknown;
  openLladaCheckpoint(dir: string, opts?: { config?: unknown }): Promise<{ config: unknown }>;
  writeLladaCheckpoint(dir: string, config: unknown, weights: unknown, opts?: { dtype?: "F32" | "BF16" }): Promise<string[]>;
}

export const TRANSFORMER_EXPORTS = [
  "buildTransformerModel",
  "buildCachedTransformerModel",
  "devTransformerConfig",
  "seededLladaWeights",
  "openLladaCheckpoint",
  "writeLladaCheckpoint",
] as const;

/** `.ts` files of a directory (recursively) or the file itself; [] when absent. */
export async function listTs(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  if ((await stat(path)).isFile()) return [path];
  const entries = await readdir(path, { recursive: true });
  return entries
    .filter((e) => e.endsWith(".ts") && !e.endsWith(".d.ts") && !e.endsWith(".test.ts"))
    .map((e) => join(path, e))
    .sort();
}

/** The first source file under `path` that exports every name in `names`. */
export async function findExporter(path: string, names: string[]): Promise<string | null> {
  for (const f of await listTs(path)) {
    const src = await readFile(f, "utf8");
    const exported = (n: string) =>
      new RegExp(`export\\s+(async\\s+)?(function\\*?|const|let|class)\\s+${n}\\b|export\\s*\\{[^}]*\\b${n}\\b`).test(src);
    if (names.every(exported)) return f;
  }
  return null;
}

/**
 * The transformer builder's functions, wherever in gpu-backend/src/builder/llada/ they are exported; null
 * while any of them is missing. Import errors propagate (a broken module should fail loudly).
 */
export async function loadTransformerModule(): Promise<TransformerBuilder | null> {
  const out: Record<string, unknown> = {};
  for (const name of TRANSFORMER_EXPORTS) {
    const file = await findExporter(TRANSFORMER_DIR, [name]);
    if (!file) return null;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    if (typeof mod[name] !== "function") return null;
    out[name] = mod[name];
  }
  return out as unknown as TransformerBuilder;
}

/** Names of the transformer builder's functions that are not exported yet (for log lines). */
export async function missingTransformerExports(): Promise<string[]> {
  const missing: string[] = [];
  for (const name of TRANSFORMER_EXPORTS) if (!(await findExporter(TRANSFORMER_DIR, [name]))) missing.push(name);
  return missing;
}

export async function loadDevTokenizer(): Promise<(() => object) | null> {
  const file = await findExporter(TOKENIZER_FILE, ["devTokenizerJson"]);
  if (!file) return null;
  return ((await import(pathToFileURL(file).href)) as { devTokenizerJson: () => object }).devTokenizerJson;
}
