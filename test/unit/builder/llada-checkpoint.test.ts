// The transformer built from a synthetic Hugging Face checkpoint with the real tensor names (tiny
// config): safetensors tensors referenced in place as ONNX external data (fp32 and bf16), conversions,
// shard placement beside model.onnx, the production bf16 graph's typing, and the dev model build.

import { lstat, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callTensors, emptyMode, type TransformerCall } from "../../../gpu-backend/src/builder/llada/call";
import { devTransformerConfig, lladaNames, type LladaConfig } from "../../../gpu-backend/src/builder/llada/config";
import { CODEBOOK_HEAD } from "../../../gpu-backend/src/builder/llada/blocks";
import { buildTransformerGraph } from "../../../gpu-backend/src/builder/llada/graph";
import { buildTransformerModel, memoryResolver } from "../../../gpu-backend/src/builder/llada/model-file";
import { transformerReference } from "../../../gpu-backend/src/builder/llada/reference";
import {
  loadLladaWeights,
  openLladaCheckpoint,
  roundWeightsToBf16,
  seededLladaWeights,
  writeLladaCheckpoint,
  type LladaWeights,
} from "../../../gpu-backend/src/builder/llada/weights";
import { ONNX_DTYPES } from "../../../gpu-backend/src/builder/onnx/graph-builder";
import { IMAGE_OFFSET } from "../../../gpu-backend/src/model/tokens";

const cfg: LladaConfig = { ...devTransformerConfig(), nLayers: 2, maxPositions: 512 };
const L = 16;
const call: TransformerCall = {
  R: 2,
  L,
  inputIds: Array.from({ length: 2 * L }, (_, i) => (i < L + 11 ? (i * 9973 + 17) % 134548 : 0)),
  seqLens: [16, 11],
  image: { G: 1, K: 2, M: 6, targets: [0, 3, 5, 7, 9, 15, 16, 18, 19, 20, 24, 26], weights: [5, -4], uniforms: [0.11, 0.31, 0.52, 0.73, 0.84, 0.95], temperature: [1] },
  text: { G: 1, K: 1, M: 2, targets: [4, 8], weights: [1], uniforms: [0.25, 0.75], temperature: [0] },
};

async function runModel(path: string | Uint8Array, c: TransformerCall = call): Promise<Record<string, ort.Tensor>> {
  const s = typeof path === "string" ? await ort.InferenceSession.create(path) : await ort.InferenceSession.create(path);
  const feeds = Object.fromEntries(Object.entries(callTensors(c)).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  const out = await s.run(feeds);
  await s.release();
  return out;
}

/** Bitwise equality of two float arrays (toEqual on millions of elements is very slow). */
function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function expectSameOutputs(a: Record<string, ort.Tensor>, b: Record<string, ort.Tensor>): void {
  for (const k of Object.keys(a)) {
    expect(b[k].dims, k).toEqual(a[k].dims);
    expect(Array.from(b[k].data as ArrayLike<number | bigint>), k).toEqual(Array.from(a[k].data as ArrayLike<number | bigint>));
  }
}

describe("transformer from a safetensors checkpoint", () => {
  let dir: string;
  let w: LladaWeights;
  let memOut: Record<string, ort.Tensor>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "llada-ckpt-"));
    w = seededLladaWeights(cfg, 5);
    memOut = await runModel(buildTransformerGraph(cfg, memoryResolver(w), { weightDtype: "FLOAT" }).toBytes());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("references fp32 shards in place and gives results identical to the seeded weights written to them", async () => {
    const ck = join(dir, "f32");
    const files = await writeLladaCheckpoint(ck, cfg, w, { dtype: "F32", shards: 3 });
    expect(files).toHaveLength(3);
    const ckpt = await openLladaCheckpoint(ck, { maxPositions: cfg.maxPositions });
    expect(ckpt.config).toEqual(cfg);
    expect(ckpt.dtype).toBe("F32");
    expect(ckpt.entries.size).toBe(9 * cfg.nLayers + 3);
    const out = join(dir, "repo-f32", "1");
    const built = await buildTransformerModel({ weights: ckpt, dtype: "fp32", outDir: out });
    expect(built.inPlaceTensors).toBe(9 * cfg.nLayers + 3 + 1); // every tensor + the codebook slice of the head
    expect(built.referencedFiles.sort()).toEqual(files.sort());
    expect(built.externalBytes).toBeLessThan(200_000); // only the RoPE tables were written
    // shards sit beside model.onnx (hard links here), so no location has ../ in it
    const listing = await readdir(out);
    for (const f of files) expect(listing).toContain(f);
    expect((await stat(join(out, files[0]))).ino).toBe((await stat(join(ck, files[0]))).ino);
    const onnx = await readFile(built.modelPath);
    expect(onnx.includes(Buffer.from("../"))).toBe(false);
    expect(onnx.byteLength).toBeLessThan(1_000_000);
    expectSameOutputs(memOut, await runModel(built.modelPath));
    // loading through the safetensors path gives the same weights to the reference
    const loaded = await loadLladaWeights(ckpt);
    for (const [n, t] of w) expect(sameFloats(loaded.get(n)!.data, t.data), n).toBe(true);
  });

  it("the codebook head is rows [126356, 134548) of ff_out, referenced at the right offset", async () => {
    const ckpt = await openLladaCheckpoint(join(dir, "f32"), { maxPositions: cfg.maxPositions });
    const g = buildTransformerGraph(cfg, (name, dtype, rows) => {
      const e = ckpt.entries.get(name)!;
      const rowBytes = e.length / e.shape[0];
      return { dtype, dims: rows ? [rows.count, e.shape[1]] : e.shape, data: { location: "x", offset: e.offset + (rows ? rows.start * rowBytes : 0), length: rows ? rows.count * rowBytes : e.length } };
    }, { weightDtype: "FLOAT" });
    const head = ckpt.entries.get(lladaNames.head)!;
    const slice = g.initializers.get(CODEBOOK_HEAD)!;
    expect(slice.dims).toEqual([8192, cfg.dModel]);
    expect(slice.data).toEqual({ location: "x", offset: head.offset + IMAGE_OFFSET * cfg.dModel * 4, length: 8192 * cfg.dModel * 4 });
  });

  it("copied shards work as well; symlinked ones are for TensorRT only (onnxruntime rejects them)", async () => {
    const ckpt = await openLladaCheckpoint(join(dir, "f32"), { maxPositions: cfg.maxPositions });
    const copied = await buildTransformerModel({ weights: ckpt, dtype: "fp32", outDir: join(dir, "repo-copy"), shardPlacement: "copy" });
    expect((await lstat(join(dir, "repo-copy", copied.referencedFiles[0]))).isFile()).toBe(true);
    expectSameOutputs(memOut, await runModel(copied.modelPath));
    const linked = await buildTransformerModel({ weights: ckpt, dtype: "fp32", outDir: join(dir, "repo-symlink"), shardPlacement: "symlink" });
    expect((await lstat(join(dir, "repo-symlink", linked.referencedFiles[0]))).isSymbolicLink()).toBe(true);
    await expect(runModel(linked.modelPath)).rejects.toThrow(/escapes model directory/);
  });

  it("references bf16 weights in place; bf16 weights with fp32 matmuls match the reference on bf16-rounded weights", async () => {
    const ck = join(dir, "bf16");
    await writeLladaCheckpoint(ck, cfg, w, { dtype: "BF16" });
    const ckpt = await openLladaCheckpoint(ck, { maxPositions: cfg.maxPositions });
    expect(ckpt.dtype).toBe("BF16");
    const wb = roundWeightsToBf16(w);
    const loaded = await loadLladaWeights(ckpt);
    for (const [n, t] of wb) expect(sameFloats(loaded.get(n)!.data, t.data), n).toBe(true);
    const built = await buildTransformerModel({ weights: ckpt, dtype: "bf16", compute: "fp32", outDir: join(dir, "repo-bf16") });
    expect(built.inPlaceTensors).toBe(9 * cfg.nLayers + 4);
    const out = await runModel(built.modelPath);
    const ref = transformerReference(cfg, wb, call);
    expect(Array.from(out.image_tokens.data as Int32Array, Number)).toEqual(Array.from(ref.image.tokens));
    expect(Array.from(out.text_tokens.data as Int32Array, Number)).toEqual(Array.from(ref.text.tokens));
    const conf = out.image_confidence.data as Float32Array;
    for (let i = 0; i < conf.length; i++) expect(Math.abs(conf[i] - ref.image.confidence[i])).toBeLessThan(2e-5);
    const ml = out.image_max_logit.data as Float32Array;
    for (let i = 0; i < ml.length; i++) expect(Math.abs(ml[i] - ref.image.maxLogit[i])).toBeLessThan(2e-4);
    // an F32 checkpoint converted to bf16 at build time gives the same model
    const conv = await buildTransformerModel({ weights: await openLladaCheckpoint(join(dir, "f32"), { maxPositions: cfg.maxPositions }), dtype: "bf16", compute: "fp32", outDir: join(dir, "repo-conv") });
    expect(conv.inPlaceTensors).toBe(0);
    expectSameOutputs(out, await runModel(conv.modelPath));
  });

  it("the production bf16 graph runs every matmul in bf16 and keeps norms, softmax and sampling in fp32", async () => {
    const g = buildTransformerGraph(cfg, memoryResolver(w), { weightDtype: "BFLOAT16" });
    const producer = new Map<string, { op: string; attrs: Record<string, unknown>; inputs: string[] }>();
    for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
    const isBf16 = (name: string) => g.initializers.get(name)?.dtype === "BFLOAT16" || (producer.get(name)?.op === "Cast" && producer.get(name)?.attrs.to === ONNX_DTYPES.BFLOAT16);
    const isF32 = (name: string) => producer.get(name)?.op !== "Cast" || producer.get(name)?.attrs.to === ONNX_DTYPES.FLOAT;
    const mm = g.nodes.filter((n) => n.op === "Gemm" || n.op === "MatMul");
    expect(mm.length).toBe(cfg.nLayers * 9 + 2);
    for (const n of mm) for (const i of n.inputs) expect(isBf16(i), `${n.op} input ${i}`).toBe(true);
    for (const n of g.nodes.filter((n) => ["Softmax", "ReduceMean", "CumSum", "Sigmoid"].includes(n.op))) expect(isF32(n.inputs[0]), `${n.op} ${n.inputs[0]}`).toBe(true);
    for (const [name, t] of g.initializers) if (name.startsWith("model.")) expect(t.dtype, name).toBe("BFLOAT16");
    // onnxruntime type-checks the graph; only its CPU provider lacks bf16 Gemm kernels.
    await expect(ort.InferenceSession.create(g.toBytes())).rejects.toThrow(/Could not find an implementation for (Gemm|MatMul)/);
    // the variant with the attention softmax in bf16 (TensorRT's fusable MHA pattern) type-checks too
    const fused = buildTransformerGraph(cfg, memoryResolver(w), { weightDtype: "BFLOAT16", attentionSoftmax: "compute" });
    const softmaxIn = fused.nodes.filter((n) => n.op === "Softmax").length;
    expect(softmaxIn).toBe(cfg.nLayers + 4);
    await expect(ort.InferenceSession.create(fused.toBytes())).rejects.toThrow(/Could not find an implementation for (Gemm|MatMul)/);
  });

  it("names what is missing or mis-shaped in a checkpoint", async () => {
    const ck = join(dir, "broken");
    const cut = new Map(w);
    cut.delete(lladaNames.block(1).v);
    await expect(writeLladaCheckpoint(ck, cfg, cut)).rejects.toThrow(/missing model\.transformer\.blocks\.1\.v_proj\.weight/);
    await expect(openLladaCheckpoint(join(dir, "repo-copy"))).rejects.toThrow(/config\.json is missing/);
    const ck2 = join(dir, "wrong-shape");
    await writeLladaCheckpoint(ck2, cfg, w, { dtype: "BF16" });
    const json = JSON.parse(await readFile(join(ck2, "config.json"), "utf8"));
    await writeFile(join(ck2, "config.json"), JSON.stringify({ ...json, n_layers: 3 }));
    await expect(openLladaCheckpoint(ck2)).rejects.toThrow(/n_layers 3.*2 blocks/);
  });
});

describe("dev transformer model", () => {
  it("builds deterministically in seconds, under 100 MB, and serves an image-only call from disk", async () => {
    const out = await mkdtemp(join(tmpdir(), "llada-dev-"));
    try {
      const config = devTransformerConfig();
      const t0 = performance.now();
      const built = await buildTransformerModel({ config, weights: seededLladaWeights(config), dtype: "fp32", outDir: out });
      const seconds = (performance.now() - t0) / 1000;
      const total = built.modelBytes + built.externalBytes;
      console.log(`[llada] dev transformer: ${(total / 1e6).toFixed(1)} MB (model.onnx ${(built.modelBytes / 1e3).toFixed(0)} kB + model.onnx.data) in ${seconds.toFixed(1)} s`);
      expect(total).toBeLessThan(100e6);
      expect(seconds).toBeLessThan(30);
      const o = await runModel(built.modelPath, { ...call, text: emptyMode() });
      expect(o.image_tokens.dims).toEqual([1, 6]);
      const again = await mkdtemp(join(tmpdir(), "llada-dev-"));
      await buildTransformerModel({ config, weights: seededLladaWeights(config), dtype: "fp32", outDir: again });
      expect(Buffer.compare(await readFile(join(again, "model.onnx.data")), await readFile(join(out, "model.onnx.data")))).toBe(0);
      expect(Buffer.compare(await readFile(join(again, "model.onnx")), await readFile(join(out, "model.onnx")))).toBe(0);
      await rm(again, { recursive: true, force: true });
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
