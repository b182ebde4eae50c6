// The model repository: committed config.pbtxt files are current, every config (dev onnxruntime and
// production TensorRT) matches the inputs/outputs of the ONNX graph it serves (checked both with our
// protobuf reader and with onnxruntime's own metadata), the text format round-trips, and the trtexec
// command lines and optimization profiles are consistent with the contract.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { cachedTransformerStates, TRANSFORMER_CACHED_MODEL, TRANSFORMER_INPUTS, TRANSFORMER_MODEL, VQ_DECODER_MODEL, VQ_ENCODER_MODEL } from "../../../gpu-backend/src/engine/contract";
import { buildCachedTransformerGraph } from "../../../gpu-backend/src/builder/llada/cached-graph";
import { devTransformerConfig, type LladaConfig } from "../../../gpu-backend/src/builder/llada/config";
import { memoryResolver } from "../../../gpu-backend/src/builder/llada/model-file";
import { seededLladaWeights } from "../../../gpu-backend/src/builder/llada/weights";
import {
  checkConfigAgainstOnnx,
  committedRepositoryFiles,
  devModelConfig,
  MODEL_CONTRACTS,
  MODEL_NAMES,
  renderDevModelConfig,
  renderTrtModelConfig,
  type ModelName,
} from "../../../gpu-backend/src/builder/repository/model-config";
import { parseOnnxIO, readOnnxIO, type OnnxIO } from "../../../gpu-backend/src/builder/repository/onnx-io";
import { parsePbtxtFields, pbOne, pbText, type PbParsed } from "../../../gpu-backend/src/triton/pbtxt";
import { toPbtxt } from "../../../gpu-backend/src/triton/pbtxt-writer";
import { answerRegionLength } from "../../../gpu-backend/src/model/layout";
import {
  cachedStateSize,
  cachedTransformerProfiles,
  DIMOO_8B_DIMS,
  TRANSFORMER_CACHED_LIMITS,
  estimateTransformerMemory,
  estimateVqMemory,
  TRANSFORMER_BUCKETS,
  transformerProfiles,
  vqDecoderProfile,
  vqEncoderProfile,
  VQ_DECODER_PROFILE_DEFAULTS,
  VQ_ENCODER_PROFILE_DEFAULTS,
} from "../../../gpu-backend/src/engine/profiles";
import { shellCommand, trtexecArgs } from "../../../gpu-backend/src/builder/repository/trtexec";
import { devVqConfig } from "../../../gpu-backend/src/builder/vqgan/config";
import { buildVqDecoderGraph, buildVqEncoderGraph } from "../../../gpu-backend/src/builder/vqgan/graph";
import { seededVqWeights } from "../../../gpu-backend/src/builder/vqgan/weights";

const root = DEV_MODEL_REPOSITORY;
const modelFile = (m: ModelName) => join(root, m, "1", "model.onnx");
/** Models whose dev ONNX exists (the transformer appears once its builder module does). */
const present = MODEL_NAMES.filter((m) => existsSync(modelFile(m)));

const ORT_TYPES: Record<string, string> = { uint8: "UINT8", int64: "INT64", float32: "FLOAT", int32: "INT32" };

/** onnxruntime's view of a model's I/O, in the OnnxIO shape. */
async function ortIO(path: string): Promise<OnnxIO> {
  const s = await ort.InferenceSession.create(path);
  const conv = (v: ort.InferenceSession.ValueMetadata) => {
    if (!v.isTensor) throw new Error(`${v.name} is not a tensor`);
    return { name: v.name, dtype: ORT_TYPES[v.type] as never, dims: v.shape.map((d) => (typeof d === "number" && d >= 0 ? d : String(d))) };
  };
  const io = { inputs: s.inputMetadata.map(conv), outputs: s.outputMetadata.map(conv), opset: undefined, externalLocations: [] };
  await s.release();
  return io;
}

describe("committed model-repository files", () => {
  it("are current (regenerate with `npm run build:dev-models -- --write-configs`)", () => {
    const files = committedRepositoryFiles();
    expect(Object.keys(files).sort()).toEqual(
      expect.arrayContaining([
        "dimoo_transformer/config.pbtxt",
        "dimoo_transformer/configs/tensorrt.pbtxt",
        "vq_encoder/config.pbtxt",
        "vq_encoder/configs/tensorrt.pbtxt",
        "vq_decoder/config.pbtxt",
        "vq_decoder/configs/tensorrt.pbtxt",
      ]),
    );
    for (const [rel, content] of Object.entries(files)) {
      const p = join(root, rel);
      expect(existsSync(p), rel).toBe(true);
      const want = typeof content === "string" ? Buffer.from(content) : Buffer.from(content);
      expect(readFileSync(p).equals(want), `${rel} is stale`).toBe(true);
    }
  });

  it("the production transformer warmup reads seq_lens from committed int32 files", () => {
    const cfg = parsePbtxtFields(readFileSync(join(root, TRANSFORMER_MODEL, "configs/tensorrt.pbtxt"), "utf8"));
    const warmups = cfg.model_warmup as PbParsed[];
    expect(warmups).toHaveLength(TRANSFORMER_BUCKETS.length);
    for (const [i, w] of warmups.entries()) {
      const inputs = w.inputs as PbParsed[];
      expect(inputs.map((e) => pbOne(e, "key"))).toEqual(MODEL_CONTRACTS[TRANSFORMER_MODEL].inputs.map((s) => s.name));
      const seq = pbOne<PbParsed>(inputs.find((e) => pbOne(e, "key") === TRANSFORMER_INPUTS.seqLens.name)!, "value")!;
      const file = String(pbOne(seq, "input_data_file"));
      const bytes = readFileSync(join(root, TRANSFORMER_MODEL, "warmup", file));
      expect(bytes.length).toBe(4);
      expect(bytes.readInt32LE(0)).toBe(TRANSFORMER_BUCKETS[i].optLen);
      const ids = pbOne<PbParsed>(inputs[0], "value")!;
      expect(ids.dims).toEqual([1, TRANSFORMER_BUCKETS[i].optLen]);
    }
  });
});

describe("config.pbtxt against the ONNX graphs", () => {
  it.each(present)("dev and TensorRT configs of %s match the graph's inputs and outputs", async (m) => {
    const ours = await readOnnxIO(modelFile(m));
    const theirs = await ortIO(modelFile(m));
    // our protobuf reader and onnxruntime agree on the graph I/O
    expect(ours.inputs.map((v) => [v.name, v.dtype, v.dims.length])).toEqual(theirs.inputs.map((v) => [v.name, v.dtype, v.dims.length]));
    expect(ours.outputs.map((v) => [v.name, v.dtype])).toEqual(theirs.outputs.map((v) => [v.name, v.dtype]));
    // The cached model's TensorRT config describes a bf16 state, which only its production graph has (next test).
    const configs = [readFileSync(join(root, m, "config.pbtxt"), "utf8"), ...(m === TRANSFORMER_CACHED_MODEL ? [] : [renderTrtModelConfig(m).text])];
    for (const text of configs) {
      const cfg = parsePbtxtFields(text);
      expect(pbOne(cfg, "name")).toBe(m);
      expect(checkConfigAgainstOnnx(cfg, ours)).toEqual([]);
      expect(checkConfigAgainstOnnx(cfg, theirs)).toEqual([]);
    }
  });

  it("the cached transformer's TensorRT config matches its bf16 graph, implicit state included", () => {
    const cfg: LladaConfig = { ...devTransformerConfig(), dModel: 32, nHeads: 2, nKvHeads: 2, nLayers: 3, mlpHidden: 64, maxPositions: 64 };
    const io = parseOnnxIO(buildCachedTransformerGraph(cfg, memoryResolver(seededLladaWeights(cfg)), { weightDtype: "BFLOAT16" }).toBytes());
    const text = renderTrtModelConfig(TRANSFORMER_CACHED_MODEL, { transformerConfig: cfg }).text;
    expect(checkConfigAgainstOnnx(parsePbtxtFields(text), io)).toEqual([]);
    // what the state check catches: dtype, width, a state the graph lacks, an initial state Triton would not use
    const bad = (edit: (t: string) => string) => checkConfigAgainstOnnx(parsePbtxtFields(edit(text)), io).join("\n");
    expect(bad((t) => t.replace("data_type: TYPE_BF16\n      dims: [ -1, -1, 32 ]", "data_type: TYPE_FP32\n      dims: [ -1, -1, 32 ]"))).toMatch(/state input key_cache_in_00 is TYPE_FP32 in the config but BFLOAT16/);
    expect(bad((t) => t.replace("dims: [ -1, -1, 32 ]", "dims: [ -1, -1, 64 ]"))).toMatch(/state key_cache_in_00 dim 2 is 64 in the config but 32/);
    expect(bad((t) => t.replaceAll("key_cache_in_02", "key_cache_in_2"))).toMatch(/state input key_cache_in_2 is not a graph input[\s\S]*graph input key_cache_in_02 is missing/);
    expect(bad((t) => t.replace("dims: [ 1, 1, 8192 ]", "dims: [ 0, 0, 8192 ]"))).toMatch(/initial_state of logit_cache_in is \[0,0,8192\], but Triton gives a first request the shape \[1,1,8192\]/);
  });

  it("the dev VQ models are present (the transformer joins when its builder exists)", () => {
    expect(present).toEqual(expect.arrayContaining([VQ_ENCODER_MODEL, VQ_DECODER_MODEL]));
  });

  it("reports every kind of mismatch", () => {
    const g = buildVqEncoderGraph(devVqConfig(), seededVqWeights(devVqConfig()));
    const io = parseOnnxIO(g.toBytes());
    expect(io.inputs).toEqual([{ name: "pixels", dtype: "UINT8", dims: ["B", 3, "H", "W"] }]);
    expect(io.outputs).toEqual([{ name: "codes", dtype: "INT64", dims: ["B", "h", "w"] }]);
    const ok = parsePbtxtFields(renderDevModelConfig(VQ_ENCODER_MODEL));
    expect(checkConfigAgainstOnnx(ok, io)).toEqual([]);
    const bad = (edit: (s: string) => string) => checkConfigAgainstOnnx(parsePbtxtFields(edit(renderDevModelConfig(VQ_ENCODER_MODEL))), io).join("\n");
    expect(bad((s) => s.replace("TYPE_UINT8", "TYPE_FP32"))).toMatch(/pixels is TYPE_FP32 in the config but UINT8 in the graph/);
    expect(bad((s) => s.replace("dims: [ 3, -1, -1 ]", "dims: [ 4, -1, -1 ]"))).toMatch(/dim 1 is 4 in the config but 3/);
    expect(bad((s) => s.replace("dims: [ 3, -1, -1 ]", "dims: [ -1, -1, -1 ]"))).toMatch(/dim 1 is fixed \(3\) in the graph but -1/);
    expect(bad((s) => s.replace("dims: [ -1, -1 ]", "dims: [ -1 ]"))).toMatch(/codes has rank 3 in the graph, 2 per the config/);
    expect(bad((s) => s.replace('name: "codes"', 'name: "indices"'))).toMatch(/config output indices is not a graph output[\s\S]*graph output codes is missing/);
    expect(bad((s) => s.replace("max_batch_size: 8", "max_batch_size: 0"))).toMatch(/rank 4 in the graph, 3 per the config/);
  });
});

describe("config.pbtxt text format", () => {
  it("round-trips messages, lists, enums and map entries", () => {
    const text = renderTrtModelConfig(VQ_DECODER_MODEL).text;
    const p = parsePbtxtFields(text);
    expect(pbOne(p, "platform")).toBe("tensorrt_plan");
    expect(pbOne(p, "max_batch_size")).toBe(VQ_DECODER_PROFILE_DEFAULTS.maxBatch);
    const input = (p.input as PbParsed[])[0];
    expect(pbText(pbOne(input, "data_type"))).toBe("TYPE_INT64");
    expect(input.dims).toEqual([-1, -1]);
    const param = (p.parameters as PbParsed[])[0];
    expect(pbOne(param, "key")).toBe("execution_context_allocation_strategy");
    expect(pbOne(pbOne<PbParsed>(param, "value")!, "string_value")).toBe("STATIC");
    const dev = devModelConfig(VQ_ENCODER_MODEL);
    expect(parsePbtxtFields(toPbtxt(dev))).toEqual(parsePbtxtFields(renderDevModelConfig(VQ_ENCODER_MODEL)));
    expect(parsePbtxtFields('a: "x\\"y" # comment\nb < c: 1 >, d: [1, 2]; e: true')).toEqual({ a: ['x"y'], b: [{ c: [1] }], d: [1, 2], e: [true] });
  });

  it("TensorRT configs: transformers unbatched over every profile (the cached one with its implicit state), VQ dynamically batched", () => {
    const t = parsePbtxtFields(renderTrtModelConfig(TRANSFORMER_MODEL).text);
    expect(pbOne(t, "max_batch_size")).toBe(0);
    expect(t.dynamic_batching).toBeUndefined();
    const group = (t.instance_group as PbParsed[])[0];
    expect(pbText(pbOne(group, "kind"))).toBe("KIND_GPU");
    expect(group.profile).toEqual(TRANSFORMER_BUCKETS.map((_, i) => String(i)));
    const c = parsePbtxtFields(renderTrtModelConfig(TRANSFORMER_CACHED_MODEL).text);
    expect(pbOne(c, "max_batch_size")).toBe(0);
    expect(((c.instance_group as PbParsed[])[0].profile as string[]).length).toBe(2);
    const sb = pbOne<PbParsed>(c, "sequence_batching")!;
    expect(pbOne(pbOne<PbParsed>(sb, "oldest")!, "max_candidate_sequences")).toBe(TRANSFORMER_CACHED_LIMITS.maxSequences);
    expect(pbOne(sb, "max_sequence_idle_microseconds")).toBeGreaterThan(0);
    expect(sb.control_input).toBeUndefined(); // the graph needs no sequence controls
    const states = sb.state as PbParsed[];
    expect(states.map((st) => [pbOne(st, "input_name"), pbOne(st, "output_name")])).toEqual(cachedTransformerStates(32).map((st) => [st.input, st.output]));
    for (const st of states) {
      expect(pbText(pbOne(st, "data_type"))).toBe("TYPE_BF16");
      expect(pbOne(st, "use_same_buffer_for_input_output")).toBe(true);
      expect(st.use_growable_memory).toBeUndefined();
      expect(pbOne<PbParsed>(st, "initial_state")!.dims).toEqual((st.dims as number[]).map((d) => (d === -1 ? 1 : d)));
    }
    expect(states[0].dims).toEqual([-1, -1, 4096]);
    expect(c.model_warmup).toBeUndefined();
    for (const m of [VQ_ENCODER_MODEL, VQ_DECODER_MODEL] as const) {
      const v = parsePbtxtFields(renderTrtModelConfig(m).text);
      expect(pbOne(v, "max_batch_size")).toBeGreaterThan(1);
      expect(pbOne<PbParsed>(v, "dynamic_batching")).toBeDefined();
      expect((v.model_warmup as PbParsed[]).length).toBe(1);
    }
  });
});

describe("optimization profiles and trtexec", () => {
  it("cover every contract input with min <= opt <= max of the contract's rank", () => {
    const check = (shapes: Record<string, { min: number[]; opt: number[]; max: number[] }>, model: ModelName) => {
      const specs = MODEL_CONTRACTS[model].inputs;
      expect(Object.keys(shapes).sort()).toEqual(specs.map((s) => s.name).sort());
      for (const s of specs) {
        const r = shapes[s.name];
        for (const v of [r.min, r.opt, r.max]) expect(v).toHaveLength(s.dims.length);
        r.min.forEach((_, i) => {
          expect(r.min[i]).toBeLessThanOrEqual(r.opt[i]);
          expect(r.opt[i]).toBeLessThanOrEqual(r.max[i]);
          if (/^\d+$/.test(s.dims[i])) expect([r.min[i], r.max[i]]).toEqual([Number(s.dims[i]), Number(s.dims[i])]);
        });
      }
    };
    for (const p of transformerProfiles()) check(p.shapes, TRANSFORMER_MODEL);
    const layout = { nLayers: 32, kvWidth: 4096 };
    const cached = cachedTransformerProfiles(layout);
    expect(cached.map((p) => [p.name, p.shapes.recompute.opt[1]])).toEqual([
      ["refresh", 0], // a refresh sends an empty list: every position
      ["cached", TRANSFORMER_CACHED_LIMITS.optCachedRecompute],
    ]);
    for (const p of cached) {
      const { contractShapes, stateShapes } = splitStateShapes(p.shapes);
      check(contractShapes, TRANSFORMER_CACHED_MODEL);
      expect(Object.keys(stateShapes)).toEqual(cachedTransformerStates(32).map((st) => st.input));
      expect(stateShapes.key_cache_in_31).toEqual({ min: [1, 1, 4096], opt: [2, 4608, 4096], max: [3, 5120, 4096] });
      expect(stateShapes.logit_cache_in.max).toEqual([3, 5120, 8192]);
    }
    check(vqEncoderProfile().shapes, VQ_ENCODER_MODEL);
    check(vqDecoderProfile().shapes, VQ_DECODER_MODEL);
    expect(vqDecoderProfile({ maxBatch: 2, maxSide: 1536, optSide: 1024 }).shapes.codes.max).toEqual([2, 96, 96]);
    expect(() => vqEncoderProfile({ maxBatch: 2, maxSide: 1000, optSide: 512 })).toThrow(/multiple of 16/);
  });

  it("writes one --profile block per bucket, and none for a single profile", () => {
    const profiles = transformerProfiles();
    const args = trtexecArgs("/x/dimoo_transformer/model.onnx", "/r/dimoo_transformer/1/model.plan", profiles, { timingCache: "/x/timing.cache" });
    expect(args.filter((a) => a.startsWith("--profile="))).toEqual(profiles.map((_, i) => `--profile=${i}`));
    expect(args).toContain("--stronglyTyped");
    expect(args).toContain("--skipInference");
    const i = args.indexOf("--profile=2");
    expect(args[i + 3]).toMatch(/^--maxShapes=input_ids:4x5120,seq_lens:4,image_targets:2x3x4608,/);
    const vq = trtexecArgs("/x/vq_encoder/model.onnx", "/r/vq_encoder/1/model.plan", [vqEncoderProfile()], { noTF32: true });
    expect(vq.some((a) => a.startsWith("--profile"))).toBe(false);
    expect(vq).toContain("--minShapes=pixels:1x3x16x16");
    expect(vq).toContain(`--maxShapes=pixels:${VQ_ENCODER_PROFILE_DEFAULTS.maxBatch}x3x2048x2048`);
    expect(vq).toContain("--noTF32");
    expect(shellCommand("trtexec", ["--onnx=/a b/m.onnx"])).toBe("trtexec '--onnx=/a b/m.onnx'");
  });

  it("sizes the cached transformer's state per request as model-repository/README.md lists it", () => {
    const llada8b = { nLayers: 32, kvWidth: 4096 };
    const rows = [
      [16, 16, 376, 0.407],
      [32, 32, 1160, 1.254],
      [64, 64, 4264, 4.611],
      [48, 96, 4760, 5.147],
    ] as const; // 256x256, 512x512, 1024x1024, 1536x768 (W x H) text-to-image with a 100-id prompt, 2 branches
    for (const [h, w, L, gb] of rows) {
      expect(100 + answerRegionLength(h, w)).toBe(L);
      expect(Number((cachedStateSize(llada8b, 2, L).totalBytes / 1e9).toFixed(3))).toBe(gb);
    }
    expect(cachedStateSize(llada8b, 1, 1)).toEqual({ kvBytes: 2 * 32 * 4096 * 2, logitBytes: 8192 * 2, totalBytes: 2 * 32 * 4096 * 2 + 8192 * 2 });
    // the TensorRT backend's state input and output bindings at the profile maximum (K <= 3, L <= 5120)
    expect((2 * cachedStateSize(llada8b, TRANSFORMER_CACHED_LIMITS.maxBranches, TRANSFORMER_CACHED_LIMITS.maxLen).totalBytes) / 1e9).toBeCloseTo(16.61, 2);
  });

  it("estimates memory: 16.2 GB of bf16 weights for the 8B model, and per-profile activations", () => {
    const est = estimateTransformerMemory(DIMOO_8B_DIMS);
    expect(est[0].weightsBytes).toBe(8_081_805_312 * 2);
    for (const e of est) expect(e.layerActivationBytes).toBeLessThan(8e9);
    // Two 2048x2048 images: the decoder profile must reach the longest output side; this still fits beside the transformer on an 80 GB GPU.
    expect(estimateVqMemory("decoder", VQ_DECODER_PROFILE_DEFAULTS)).toBeLessThan(28e9);
  });
});

/** A cached-transformer profile's shapes: the contract inputs' and the state inputs'. */
function splitStateShapes(shapes: Record<string, { min: number[]; opt: number[]; max: number[] }>) {
  const isState = (n: string) => /_cache_in/.test(n);
  return {
    contractShapes: Object.fromEntries(Object.entries(shapes).filter(([n]) => !isState(n))),
    stateShapes: Object.fromEntries(Object.entries(shapes).filter(([n]) => isState(n))),
  };
}

describe("dev VQ models on disk", () => {
  it("are the deterministic output of the builder for the dev config and seed", async () => {
    const cfg = devVqConfig();
    const w = seededVqWeights(cfg, 1);
    expect(readFileSync(modelFile(VQ_ENCODER_MODEL)).equals(Buffer.from(buildVqEncoderGraph(cfg, w).toBytes({ producer: "dimoo-dev-models" })))).toBe(true);
    expect(readFileSync(modelFile(VQ_DECODER_MODEL)).equals(Buffer.from(buildVqDecoderGraph(cfg, w).toBytes({ producer: "dimoo-dev-models" })))).toBe(true);
  });
});
