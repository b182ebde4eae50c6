// The dev-model generator (vitest globalSetup, `npm run build:dev-models`): deterministic, idempotent,
// under 30 s and 100 MB on disk, keeps files it does not own, regenerates a part whose files were damaged,
// and gives both transformers one weights file.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDevModels, DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../../../gpu-backend/src/engine/contract";

let work: string;
const quiet = () => {};

function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(root, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(root);
  return out;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "dev-models-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("dev models", () => {
  it("are generated deterministically in under 30 s and 100 MB, then left alone", async () => {
    const a = join(work, "a");
    const b = join(work, "b");
    const t0 = performance.now();
    const first = await buildDevModels({ root: a, lockDir: work, log: quiet });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(30_000);
    expect(first.find((r) => r.part === "vq")!.status).toBe("built");
    // Disk use: the two transformers share their weights file through hard links, counted once.
    const inodes = new Map(Object.keys(tree(a)).map((f) => [statSync(join(a, f)).ino, statSync(join(a, f)).size]));
    const bytes = [...inodes.values()].reduce((s, n) => s + n, 0);
    expect(bytes).toBeLessThan(100e6);
    console.log(`[dev-models test] generated ${(bytes / 1e6).toFixed(1)} MB in ${Math.round(ms)} ms: ${first.map((r) => `${r.part} ${r.status}`).join(", ")}`);

    await buildDevModels({ root: b, lockDir: work, log: quiet });
    expect(tree(b)).toEqual(tree(a));

    const again = await buildDevModels({ root: a, lockDir: work, log: quiet });
    for (const r of again) expect(r.status === "current" || r.status === "skipped", `${r.part} ${r.status}`).toBe(true);
  });

  it("rebuilds a damaged part and keeps files it does not own (e.g. a TensorRT plan)", async () => {
    const root = join(work, "c");
    await buildDevModels({ root, lockDir: work, log: quiet });
    await writeFile(join(root, VQ_DECODER_MODEL, "1", "model.plan"), "plan");
    await writeFile(join(root, VQ_ENCODER_MODEL, "1", "model.onnx"), "truncated");
    const r = await buildDevModels({ root, lockDir: work, log: quiet });
    expect(r.find((p) => p.part === "vq")!.status).toBe("built");
    expect(statSync(join(root, VQ_ENCODER_MODEL, "1", "model.onnx")).size).toBeGreaterThan(1e6);
    expect(readFileSync(join(root, VQ_DECODER_MODEL, "1", "model.plan"), "utf8")).toBe("plan");
    expect(readdirSync(join(root, VQ_ENCODER_MODEL)).filter((f) => f.includes("tmp"))).toEqual([]);
  });

  it("the globalSetup has populated model-repository/", () => {
    for (const m of [VQ_ENCODER_MODEL, VQ_DECODER_MODEL]) expect(existsSync(join(DEV_MODEL_REPOSITORY, m, "1", "model.onnx"))).toBe(true);
    if (existsSync(join(DEV_MODEL_REPOSITORY, TRANSFORMER_MODEL, "1", "dev-model.stamp.json")))
      expect(existsSync(join(DEV_MODEL_REPOSITORY, TRANSFORMER_MODEL, "1", "model.onnx"))).toBe(true);
  });

  it("writes the stateless and the cached transformer over one weights file", async () => {
    const root = join(work, "d");
    await buildDevModels({ root, lockDir: work, log: quiet });
    const weights = [TRANSFORMER_MODEL, TRANSFORMER_CACHED_MODEL].map((m) => statSync(join(root, m, "1", "model.safetensors")));
    expect(weights[0].ino).toBe(weights[1].ino);
    expect(weights[0].nlink).toBe(2);
    for (const m of [TRANSFORMER_MODEL, TRANSFORMER_CACHED_MODEL]) expect(statSync(join(root, m, "1", "model.onnx")).size).toBeLessThan(1e6);
    expect(readdirSync(root).filter((f) => f.startsWith("."))).toEqual([]); // the scratch checkpoint is gone
  });
});
