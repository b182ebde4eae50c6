// The production build pipeline (`npm run build:engines`) on a tiny synthetic Hugging Face checkpoint with
// the real tensor names: ONNX graphs, configs checked against them, warmup data, tokenizer and the trtexec
// script; stopping before trtexec when it is absent; a fake trtexec for the TensorRT step; clear errors
// for missing checkpoint files. The transformer part runs when its builder (gpu-backend/src/builder/llada)
// exists.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../../gpu-backend/src/cli/build-dev-models";
import { TRANSFORMER_CACHED_MODEL, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../../../gpu-backend/src/engine/contract";
import { BuildError, buildEngines, type BuildEnginesOptions } from "../../../gpu-backend/src/builder/repository/build-engines";
import { checkConfigAgainstOnnx, MODEL_NAMES, type ModelName } from "../../../gpu-backend/src/builder/repository/model-config";
import { readOnnxIO } from "../../../gpu-backend/src/builder/repository/onnx-io";
import { findExporter, loadTransformerModule, TRANSFORMER_DIR } from "../../../gpu-backend/src/builder/repository/optional-modules";
import { parsePbtxtFields, pbOne, type PbParsed } from "../../../gpu-backend/src/triton/pbtxt";
import { devVqConfig } from "../../../gpu-backend/src/builder/vqgan/config";
import { buildVqEncoderGraph } from "../../../gpu-backend/src/builder/vqgan/graph";
import { seededVqWeights, writeVqCheckpoint } from "../../../gpu-backend/src/builder/vqgan/weights";

let work: string;
let ckpt: string;
let models: ModelName[];
const logs: string[] = [];
const vqCfg = devVqConfig();
const vqWeights = seededVqWeights(vqCfg, 7);

/** Writes the tiny transformer part of the checkpoint with the builder module's own writer, if it exists. */
async function writeTransformerPart(dir: string): Promise<boolean> {
  const mod = await loadTransformerModule();
  const writerFile = await findExporter(TRANSFORMER_DIR, ["writeLladaCheckpoint"]);
  if (!mod || !writerFile) return false;
  const { writeLladaCheckpoint } = (await import(pathToFileURL(writerFile).href)) as {
    writeLladaCheckpoint: (dir: string, cfg: unknown, w: unknown, o: { dtype: "BF16"; shards: number }) => Promise<string[]>;
  };
  // the real vocabulary and names, the smallest widths
  const cfg = { ...(mod.devTransformerConfig() as Record<string, unknown>), dModel: 32, nHeads: 2, nKvHeads: 2, nLayers: 1, mlpHidden: 64 };
  await writeLladaCheckpoint(dir, cfg, mod.seededLladaWeights(cfg, 3), { dtype: "BF16", shards: 2 });
  return true;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "build-engines-"));
  ckpt = join(work, "Lumina-DiMOO");
  await writeVqCheckpoint(join(ckpt, "vqvae"), vqCfg, vqWeights);
  await writeFile(join(ckpt, "tokenizer.json"), JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } }));
  const withTransformer = await writeTransformerPart(ckpt);
  models = withTransformer ? [...MODEL_NAMES] : [VQ_ENCODER_MODEL, VQ_DECODER_MODEL];
  if (!withTransformer) console.log("[build-engines test] transformer builder absent: building the VQ engines only");
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const opts = (name: string, extra: Partial<BuildEnginesOptions> = {}): BuildEnginesOptions => ({
  checkpoint: ckpt,
  out: join(work, name),
  models,
  env: { PATH: "/nonexistent" },
  trtexecFallbacks: [],
  log: (m) => logs.push(m),
  ...extra,
});

function expectRepository(out: string): void {
  for (const m of models) {
    const cfgText = readFileSync(join(out, m, "config.pbtxt"), "utf8");
    const cfg = parsePbtxtFields(cfgText);
    expect(pbOne(cfg, "platform")).toBe("tensorrt_plan");
    expect(existsSync(join(out, m, "1"))).toBe(true);
  }
  if (models.includes(TRANSFORMER_MODEL)) {
    expect(readdirSync(join(out, TRANSFORMER_MODEL, "warmup")).sort()).toEqual(["seq_lens_1280", "seq_lens_2560", "seq_lens_4608", "seq_lens_8192"]);
    expect(readFileSync(join(out, TRANSFORMER_MODEL, "tokenizer.json"), "utf8")).toBe(readFileSync(join(ckpt, "tokenizer.json"), "utf8"));
  }
}

describe("build:engines on a tiny synthetic checkpoint", () => {
  it("stops before trtexec when it is absent, naming it, after writing graphs, configs and the script", async () => {
    const out = join(work, "repo-no-trt");
    const err = await buildEngines(opts("repo-no-trt")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).exitCode).toBe(3);
    expect((err as BuildError).message).toMatch(/trtexec not found \(looked at \$TRTEXEC, every PATH directory/);
    expectRepository(out);
    const onnxDir = `${out}-onnx`;
    const script = readFileSync(join(onnxDir, "build-engines.sh"), "utf8");
    for (const m of models) {
      const io = await readOnnxIO(join(onnxDir, m, "model.onnx"));
      expect(checkConfigAgainstOnnx(parsePbtxtFields(readFileSync(join(out, m, "config.pbtxt"), "utf8")), io)).toEqual([]);
      expect(script).toContain(`--saveEngine=${join(out, m, "1", "model.plan")}`);
      expect(existsSync(join(out, m, "1", "model.plan"))).toBe(false);
    }
  });

  it("--skip-trtexec stops there on purpose; the VQ graphs carry the checkpoint's weights", async () => {
    const r = await buildEngines(opts("repo-skip", { skipTrtexec: true }));
    expect(r.stoppedBeforeTrtexec).toBe(true);
    expectRepository(join(work, "repo-skip"));
    // the encoder built from the checkpoint computes exactly what the in-memory weights compute
    const fromCkpt = await ort.InferenceSession.create(join(r.onnxDir, VQ_ENCODER_MODEL, "model.onnx"));
    const direct = await ort.InferenceSession.create(buildVqEncoderGraph(vqCfg, vqWeights).toBytes());
    const px = new Uint8Array(2 * 3 * 32 * 48).map((_, i) => (i * 37) % 256);
    const feed = { pixels: new ort.Tensor("uint8", px, [2, 3, 32, 48]) };
    expect(Array.from((await fromCkpt.run(feed)).codes.data as BigInt64Array)).toEqual(Array.from((await direct.run(feed)).codes.data as BigInt64Array));
  });

  it.runIf(process.platform !== "win32")("runs trtexec per model with its profiles and records the TensorRT version", async () => {
    const bin = join(work, "fake-trt", "trtexec");
    await mkdir(join(work, "fake-trt"), { recursive: true });
    await writeFile(
      bin,
      `#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v101303] $*"
echo "[I] TensorRT version: 10.13.3"
plan=""; onnx=""
for a in "$@"; do case "$a" in --saveEngine=*) plan="\${a#--saveEngine=}";; --onnx=*) onnx="\${a#--onnx=}";; esac; done
[ -f "$onnx" ] || { echo "no onnx $onnx" >&2; exit 1; }
echo "$*" > "$plan.args"
printf 'plan' > "$plan"
`,
    );
    await chmod(bin, 0o755);
    const out = join(work, "repo-fake-trt");
    const r = await buildEngines(opts("repo-fake-trt", { env: { PATH: join(work, "fake-trt") } }));
    expect(r.stoppedBeforeTrtexec).toBe(false);
    expect(r.tensorrtVersion).toBe("10.13.3");
    for (const m of models) {
      expect(readFileSync(join(out, m, "1", "model.plan"), "utf8")).toBe("plan");
      const args = readFileSync(join(out, m, "1", "model.plan.args"), "utf8");
      expect(args).toContain("--stronglyTyped");
      if (m === TRANSFORMER_MODEL) expect(args).toContain("--profile=3");
      else if (m === TRANSFORMER_CACHED_MODEL) expect(args).toMatch(/--profile=1 .*--maxShapes=input_ids:3x5120,.*key_cache_in_00:3x5120x32,/);
      else expect(args).toContain("--noTF32");
      const info = JSON.parse(readFileSync(join(out, m, "build-info.json"), "utf8")) as { tensorrtVersion: string; trtexec: string };
      expect(info.tensorrtVersion).toBe("10.13.3");
      expect(info.trtexec).toBe(bin);
    }
    expect(existsSync(join(r.onnxDir, `${VQ_ENCODER_MODEL}.trtexec.log`))).toBe(true);
  });

  it("builds the cached transformer over the same shards, with the limits it is given", async () => {
    if (!models.includes(TRANSFORMER_CACHED_MODEL)) return;
    const r = await buildEngines(opts("repo-cached", { skipTrtexec: true, models: [TRANSFORMER_CACHED_MODEL], cachedLimits: { maxSequences: 20, maxBranches: 2 } }));
    const cfg = parsePbtxtFields(readFileSync(join(work, "repo-cached", TRANSFORMER_CACHED_MODEL, "config.pbtxt"), "utf8"));
    const sb = pbOne<PbParsed>(cfg, "sequence_batching")!;
    expect(pbOne(pbOne<PbParsed>(sb, "oldest")!, "max_candidate_sequences")).toBe(20);
    expect((sb.state as PbParsed[]).length).toBe(2 * 1 + 1); // one layer: its keys and values, then the logits
    expect(r.models[0].args.join(" ")).toMatch(/--maxShapes=input_ids:2x5120,/);
    const dir = join(r.onnxDir, TRANSFORMER_CACHED_MODEL);
    const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors"));
    expect(shards.length).toBe(2);
    for (const f of shards) expect(statSync(join(dir, f)).ino).toBe(statSync(join(ckpt, f)).ino); // referenced in place, not copied
  });

  it("fails with exit code 4 and the log file when trtexec fails", async () => {
    const bin = join(work, "bad-trt", "trtexec");
    await mkdir(join(work, "bad-trt"), { recursive: true });
    await writeFile(bin, "#!/bin/sh\necho 'ERROR: out of memory' >&2\nexit 1\n");
    await chmod(bin, 0o755);
    const err = await buildEngines(opts("repo-bad-trt", { trtexec: bin, models: [VQ_DECODER_MODEL] })).catch((e: unknown) => e);
    expect((err as BuildError).exitCode).toBe(4);
    expect((err as BuildError).message).toMatch(/trtexec failed for vq_decoder \(exit 1\); see .*vq_decoder\.trtexec\.log/);
  });

  it("names every missing checkpoint file", async () => {
    const partial = join(work, "partial");
    await mkdir(join(partial, "vqvae"), { recursive: true });
    await writeFile(join(partial, "vqvae", "config.json"), "{}");
    const err = await buildEngines({ ...opts("repo-partial"), checkpoint: partial, models: [...MODEL_NAMES] }).catch((e: unknown) => e);
    expect((err as BuildError).exitCode).toBe(2);
    const msg = (err as BuildError).message;
    for (const f of ["config.json", "tokenizer.json", "*.safetensors", "vqvae/diffusion_pytorch_model.safetensors"]) expect(msg).toContain(f);
    expect(msg).not.toContain("vqvae/config.json");
    const none = await buildEngines({ ...opts("repo-none"), checkpoint: join(work, "does-not-exist") }).catch((e: unknown) => e);
    expect((none as BuildError).message).toMatch(/missing: \(the checkpoint directory itself\)/);
  });

  it("refuses to overwrite the dev repository and a bad explicit trtexec", async () => {
    const dev = join(work, "dev-repo");
    const e1 = await buildEngines({ ...opts("x"), out: dev, devRepository: dev }).catch((e: unknown) => e);
    expect((e1 as BuildError).message).toMatch(/is the dev model repository/);
    const e2 = await buildEngines(opts("y", { trtexec: join(work, "no-such-trtexec") })).catch((e: unknown) => e);
    expect((e2 as BuildError).exitCode).toBe(3);
    expect((e2 as BuildError).message).toMatch(/trtexec not found or not executable at .*no-such-trtexec \(--trtexec\)/);
  });
});

describe("build:engines command line", () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "gpu-backend/src/cli/build-engines.ts"), ...args], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...process.env, ...env },
      timeout: 120_000,
    });

  it("exits 2 naming missing arguments and missing checkpoint files", () => {
    const a = cli(["--out", join(work, "cli-a")]);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/missing --checkpoint/);
    const b = cli(["--checkpoint", join(work, "partial"), "--out", join(work, "cli-b"), "--models", "vq_encoder"]);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/checkpoint .*partial is missing: vqvae\/diffusion_pytorch_model\.safetensors/);
  });

  it("exits 3 when trtexec is missing, after writing the repository", () => {
    const out = join(work, "cli-c");
    const r = cli(["--checkpoint", ckpt, "--out", out, "--models", "vq_encoder,vq_decoder"], { TRTEXEC: join(work, "nowhere", "trtexec") });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/trtexec not found or not executable at .*nowhere\/trtexec \(\$TRTEXEC\)/);
  });
});
