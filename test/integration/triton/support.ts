// Test support for the Triton client and the embedded backend: ONNX test models written with the graph
// builder into temporary Triton model repositories (with their config.pbtxt), and server start helpers.

import { copyFile, link, mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GraphBuilder, ONNX_DTYPES, type OnnxDType } from "../../../gpu-backend/src/builder/onnx/graph-builder";
import { start, type EmbeddedBackend, type StartOptions } from "../../../gpu-backend/src/embedded/server";
import { TritonClient, type TritonClientOptions } from "../../../gpu-backend/src/triton/client";
import type { DataType } from "../../../gpu-backend/src/triton/datatypes";

const STRING: OnnxDType = "STRING";

/** Triton datatype -> ONNX element type, for every datatype onnxruntime carries (all but BF16). */
export const ORT_DATATYPES: [DataType, OnnxDType][] = [
  ["BOOL", "BOOL"],
  ["UINT8", "UINT8"],
  ["UINT16", "UINT16"],
  ["UINT32", "UINT32"],
  ["UINT64", "UINT64"],
  ["INT8", "INT8"],
  ["INT16", "INT16"],
  ["INT32", "INT32"],
  ["INT64", "INT64"],
  ["FP16", "FLOAT16"],
  ["FP32", "FLOAT"],
  ["FP64", "DOUBLE"],
  ["BYTES", STRING],
];

export const configType = (dt: DataType) => (dt === "BYTES" ? "TYPE_STRING" : `TYPE_${dt}`);

export interface ModelFiles {
  config: string;
  /** Alternative configs written as configs/<name>.pbtxt (chosen with start({ configName })). */
  configs?: Record<string, string>;
  /** version -> graph (written as <version>/model.onnx), or "dir" to write <version>/model.onnx/model.onnx */
  versions?: Record<number, { graph: GraphBuilder; layout?: "file" | "dir"; externalThresholdBytes?: number }>;
  /** version -> a directory whose files are hard-linked (copied across file systems) into <version>/, e.g. a dev model. */
  linked?: Record<number, string>;
}

export async function writeRepository(models: Record<string, ModelFiles>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "triton-repo-"));
  for (const [name, m] of Object.entries(models)) {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.pbtxt"), m.config);
    for (const [cfgName, text] of Object.entries(m.configs ?? {})) {
      await mkdir(join(dir, "configs"), { recursive: true });
      await writeFile(join(dir, "configs", `${cfgName}.pbtxt`), text);
    }
    for (const [v, spec] of Object.entries(m.versions ?? {})) {
      const base = join(dir, v);
      const path = spec.layout === "dir" ? join(base, "model.onnx", "model.onnx") : join(base, "model.onnx");
      await spec.graph.save(path, { externalThresholdBytes: spec.externalThresholdBytes });
    }
    for (const [v, from] of Object.entries(m.linked ?? {})) {
      await mkdir(join(dir, v), { recursive: true });
      for (const f of await readdir(from)) await link(join(from, f), join(dir, v, f)).catch(() => copyFile(join(from, f), join(dir, v, f)));
    }
    if (!m.versions && !m.linked) await mkdir(join(dir, "1"), { recursive: true });
  }
  return root;
}

// ---- models ---------------------------------------------------------------------------------------------

/** `all_types`: for every ORT datatype an identity IN_<DT> -> OUT_<DT>, dims [-1], no batching. */
export function allTypesModel(): ModelFiles {
  const g = new GraphBuilder("all_types");
  const io: DataType[] = [];
  for (const [dt, onnx] of ORT_DATATYPES) {
    g.op("Identity", [g.input(`IN_${dt}`, onnx, ["N"])], {}, g.output(`OUT_${dt}`, onnx, ["N"]));
    io.push(dt);
  }
  const config = `
name: "all_types"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
${io.map((dt) => `  { name: "IN_${dt}" data_type: ${configType(dt)} dims: [ -1 ] }`).join(",\n")}
]
output [
${io.map((dt) => `  { name: "OUT_${dt}" data_type: ${configType(dt)} dims: [ -1 ] }`).join(",\n")}
]
instance_group [ { kind: KIND_CPU count: 1 } ]
`;
  return { config, versions: { 1: { graph: g } } };
}

/** `identity_all`: Triton's identity backend over every datatype, BF16 included (ORT has no BF16 I/O). */
export function identityAllModel(): ModelFiles {
  const dts: DataType[] = ["BF16", "BYTES", "FP16", "FP32", "INT64", "BOOL"];
  return {
    config: `
name: "identity_all"
backend: "identity"
max_batch_size: 0
input [ ${dts.map((dt) => `{ name: "INPUT_${dt}" data_type: ${configType(dt)} dims: [ -1, -1 ] }`).join(", ")} ]
output [ ${dts.map((dt) => `{ name: "OUTPUT_${dt}" data_type: ${configType(dt)} dims: [ -1, -1 ] }`).join(", ")} ]
`,
  };
}

/** `slow`: identity backend that sleeps `delayMs` per execution, one instance (deadline/cancel tests). */
export function slowModel(delayMs: number, extra = ""): ModelFiles {
  return {
    config: `
name: "slow"
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
parameters { key: "execute_delay_ms" value { string_value: "${delayMs}" } }
${extra}
`,
  };
}

/**
 * `affine`-style batching model: y = x * 2 + 1 over FP32 [B, 4], plus `rowsum` = sum over the row, with
 * max_batch_size 8. `batching` adds the dynamic batcher section.
 */
export function affineModel(name: string, batching: string | null): ModelFiles {
  const g = new GraphBuilder(name);
  const x = g.input("x", "FLOAT", ["B", 4]);
  const y = g.op("Add", [g.op("Mul", [x, g.scalarFloat(2)]), g.scalarFloat(1)]);
  g.op("Identity", [y], {}, g.output("y", "FLOAT", ["B", 4]));
  g.op("ReduceSum", [x, g.constInt64([1])], { keepdims: 0 }, g.output("rowsum", "FLOAT", ["B"]));
  return {
    config: `
name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [
  { name: "y" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "rowsum" data_type: TYPE_FP32 dims: [ 1 ] reshape: { shape: [ ] } }
]
instance_group [ { kind: KIND_CPU count: 1 } ]
${batching ?? ""}
`,
    versions: { 1: { graph: g } },
  };
}

/**
 * `vq_like`: UINT8 pixels [B, 3, H, W] -> INT64 codes [B, H, W] (channel mean, floored) and FP32 mean
 * [B, H, W], max_batch_size 8 with dynamic batching, weights in external data (`model.onnx.data`).
 * Version 1 is the file layout, version 2 the `model.onnx/` directory layout (version_policy all).
 */
export function vqLikeModel(): ModelFiles {
  const build = (scale: number) => {
    const g = new GraphBuilder("vq_like");
    const px = g.input("pixels", "UINT8", ["B", 3, "H", "W"]);
    const f = g.op("Cast", [px], { to: ONNX_DTYPES.FLOAT });
    const mean = g.op("ReduceMean", [f], { axes: [1], keepdims: 0 });
    // A large constant so that the model has external data: scale * ones(4096) summed / 4096 = scale.
    const big = g.initializer("big", { dtype: "FLOAT", dims: [4096], data: new Float32Array(4096).fill(scale) });
    const s = g.op("ReduceMean", [big], { keepdims: 0 });
    const scaled = g.op("Mul", [mean, s]);
    g.op("Identity", [scaled], {}, g.output("mean", "FLOAT", ["B", "H", "W"]));
    g.op("Cast", [g.op("Floor", [scaled])], { to: ONNX_DTYPES.INT64 }, g.output("codes", "INT64", ["B", "H", "W"]));
    return g;
  };
  return {
    config: `
name: "vq_like"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { all { } }
input [ { name: "pixels" data_type: TYPE_UINT8 dims: [ 3, -1, -1 ] } ]
output [
  { name: "codes" data_type: TYPE_INT64 dims: [ -1, -1 ] },
  { name: "mean" data_type: TYPE_FP32 dims: [ -1, -1 ] }
]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 1000 }
`,
    versions: {
      1: { graph: build(1), externalThresholdBytes: 1024 },
      2: { graph: build(2), layout: "dir", externalThresholdBytes: 1024 },
    },
  };
}

/**
 * `accumulate`: a stateful sequence model with implicit state. STATE_IN [-1] FP32 starts empty ([0]); each
 * request appends its INPUT [1] (STATE_OUT = concat(STATE_IN, INPUT)) and gets back SUM (sum of the state)
 * and COUNT (state length). The control tensors START/END/READY (INT32) and CORRID (UINT64, or BYTES for
 * string sequence ids) come back in FLAGS and CORR so the test can see what the sequence batcher fed.
 */
export function accumulateModel(idleUs: number, name = "accumulate", corrid: "UINT64" | "BYTES" = "UINT64"): ModelFiles {
  const g = new GraphBuilder(name);
  const corrOnnx: OnnxDType = corrid === "BYTES" ? STRING : "UINT64";
  const input = g.input("INPUT", "FLOAT", [1]);
  const stateIn = g.input("STATE_IN", "FLOAT", ["S"]);
  const start = g.input("START", "INT32", [1]);
  const end = g.input("END", "INT32", [1]);
  const ready = g.input("READY", "INT32", [1]);
  const corr = g.input("CORRID", corrOnnx, [1]);
  const next = g.op("Concat", [stateIn, input], { axis: 0 });
  g.op("Identity", [next], {}, g.output("STATE_OUT", "FLOAT", ["S1"]));
  g.op("ReduceSum", [next], { keepdims: 1 }, g.output("SUM", "FLOAT", [1]));
  g.op("Shape", [next], {}, g.output("COUNT", "INT64", [1]));
  g.op("Concat", [start, end, ready], { axis: 0 }, g.output("FLAGS", "INT32", [3]));
  g.op("Identity", [corr], {}, g.output("CORR", corrOnnx, [1]));
  return {
    config: `
name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "INPUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [
  { name: "SUM" data_type: TYPE_FP32 dims: [ 1 ] },
  { name: "COUNT" data_type: TYPE_INT64 dims: [ 1 ] },
  { name: "FLAGS" data_type: TYPE_INT32 dims: [ 3 ] },
  { name: "CORR" data_type: ${configType(corrid)} dims: [ 1 ] }
]
instance_group [ { kind: KIND_CPU count: 2 } ]
sequence_batching {
  max_sequence_idle_microseconds: ${idleUs}
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "END" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] },
    { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] },
    { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: ${configType(corrid)} } ] }
  ]
  state [
    {
      input_name: "STATE_IN"
      output_name: "STATE_OUT"
      data_type: TYPE_FP32
      dims: [ -1 ]
      initial_state: { data_type: TYPE_FP32 dims: [ 0 ] zero_data: true name: "empty" }
    }
  ]
}
`,
    versions: { 1: { graph: g } },
  };
}

// ---- servers --------------------------------------------------------------------------------------------

export interface TestServer {
  backend: EmbeddedBackend;
  client: TritonClient;
  repo: string;
  stop(): Promise<void>;
}

export async function startServer(models: Record<string, ModelFiles>, opts: Partial<StartOptions> = {}, clientOpts: TritonClientOptions = {}): Promise<TestServer> {
  const repo = await writeRepository(models);
  const backend = await start({ repository: repo, port: 0, host: "127.0.0.1", ...opts });
  const client = new TritonClient(backend.url, clientOpts);
  return {
    backend,
    client,
    repo,
    async stop() {
      client.close();
      await backend.close();
      await rm(repo, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` and returns the error it throws (fails if it does not). */
export async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}
