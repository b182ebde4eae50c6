import { describe, expect, it } from "vitest";
import { completeFromModel, normalizeModelConfig, parseModelConfig } from "../../../gpu-backend/src/embedded/config";
import { parsePbtxt, parseTextProto, PbtxtError } from "../../../gpu-backend/src/triton/pbtxt";
import { parseVersion } from "../../../gpu-backend/src/embedded/repository";

const VQ = `
# A VQ decoder as Triton documents it.
name: "vq_decoder"
platform: "onnxruntime_onnx"
max_batch_size: 8
input  [ { name: "codes"  data_type: TYPE_INT64 dims: [ -1, -1 ] } ]      # [B, h, w]
output [
  {
    name: "pixels"
    data_type: TYPE_UINT8
    dims: [ 3, -1, -1 ]
  }
]
instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0 ] } ]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 500
  default_queue_policy { max_queue_size: 64 timeout_action: REJECT }
}
optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt"
  parameters { key: "precision_mode" value: "FP16" }
  parameters { key: "trt_engine_cache_path" value: '/tmp/trt\\'s' } } ] } }
parameters { key: "execution_context_allocation_strategy" value { string_value: "STATIC" } }
parameters: { key: "x"; value: < string_value: "a" "b" > }
model_warmup [ { name: "w" batch_size: 1 count: 2
  inputs { key: "codes" value { data_type: TYPE_INT64 dims: [ 32, 32 ] zero_data: true } } } ]
version_policy { specific { versions: 1 versions: 3 } }
`;

describe("protobuf text format", () => {
  it("parses a realistic Triton config with the schema", () => {
    const c = parseModelConfig(VQ);
    expect(c.name).toBe("vq_decoder");
    expect(c.max_batch_size).toBe(8);
    expect(c.input[0]).toMatchObject({ name: "codes", data_type: "TYPE_INT64", dims: [-1, -1] });
    expect(c.output[0]).toMatchObject({ name: "pixels", data_type: "TYPE_UINT8", dims: [3, -1, -1] });
    expect(c.instance_group[0]).toMatchObject({ kind: "KIND_GPU", count: 2, gpus: [0] });
    expect(c.dynamic_batching).toMatchObject({
      preferred_batch_size: [4, 8],
      max_queue_delay_microseconds: 500,
      default_queue_policy: { max_queue_size: 64, timeout_action: "REJECT" },
    });
    expect(c.scheduling_choice).toBe("dynamic_batching");
    const acc = (c.optimization as { execution_accelerators: { gpu_execution_accelerator: { name: string; parameters: Record<string, string> }[] } }).execution_accelerators
      .gpu_execution_accelerator[0];
    expect(acc).toEqual({ name: "tensorrt", parameters: { precision_mode: "FP16", trt_engine_cache_path: "/tmp/trt's" } });
    expect(c.parameters).toEqual({ execution_context_allocation_strategy: { string_value: "STATIC" }, x: { string_value: "ab" } });
    expect((c.model_warmup[0] as { inputs: Record<string, unknown> }).inputs.codes).toMatchObject({ dims: [32, 32], zero_data: true });
    expect(c.version_policy?.specific?.versions).toEqual([1, 3]);
  });

  it("accepts numbers in every notation and enums by number", () => {
    const c = parseModelConfig(`max_batch_size: 0x10 input { name: 'a' data_type: 11 dims: -1 dims: 010 }
      sequence_batching { max_sequence_idle_microseconds: 5000000; control_input [ { name: "S" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1.5e0 ] } ] } ] }`);
    expect(c.max_batch_size).toBe(16);
    expect(c.input[0]).toMatchObject({ data_type: "TYPE_FP32", dims: [-1, 8] });
    expect(c.sequence_batching?.control_input[0].control[0]).toMatchObject({ fp32_false_true: [0, 1.5] });
    expect(parseTextProto("graph { level: -1 } eager_batching: true", "inference.ModelOptimizationPolicy")).toMatchObject({ graph: { level: -1 }, eager_batching: true });
  });

  it("reports errors with positions", () => {
    const bad = (text: string, re: RegExp) => {
      let err: unknown;
      try {
        parseModelConfig(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PbtxtError);
      expect((err as Error).message).toMatch(re);
    };
    bad("nme: 'x'", /unknown field 'nme' in inference.ModelConfig \(line 1, column 1\)/);
    bad("name: 'x'\nname: 'y'", /non-repeated field 'name' is specified multiple times \(line 2/);
    bad("input [ { data_type: TYPE_FOO } ]", /unknown enum value 'TYPE_FOO'/);
    bad("max_batch_size: 'x'", /expected an integer/);
    bad("input { name: 'x' ", /expected '}'/);
    bad("name: \"x", /unterminated string/);
    bad("dynamic_batching { } sequence_batching { }", /another member of oneof 'scheduling_choice'/);
    bad("max_batch_size: 3000000000", /out of range/);
  });

  it("reads what the engine's pbtxt writer (JSON-quoted strings) produces", () => {
    const c = parseModelConfig('name: "m\\u00e9\\"x\\\\" parameters { key: "k" value { string_value: "a\\u0001b" } }');
    expect(c.name).toBe('mé"x\\');
    expect(c.parameters.k.string_value).toBe("a\u0001b");
  });

  it("keeps a schema-free tree for other uses", () => {
    const t = parsePbtxt("a { b: [1, 2] c: \"x\\n\" }");
    expect(t.entries[0].name).toBe("a");
    const inner = t.entries[0].value;
    expect(inner.kind).toBe("msg");
    if (inner.kind === "msg") expect(inner.entries.map((e) => [e.name, e.value.kind === "msg" ? "msg" : e.value.value])).toEqual([
      ["b", "1"],
      ["b", "2"],
      ["c", "x\n"],
    ]);
  });
});

describe("config normalization", () => {
  it("fills Triton's defaults", () => {
    const c = normalizeModelConfig(parseModelConfig(VQ.replace("version_policy { specific { versions: 1 versions: 3 } }", "")), "vq_decoder");
    expect(c.backend).toBe("onnxruntime");
    expect(c.default_model_filename).toBe("model.onnx");
    expect(c.version_policy).toMatchObject({ latest: { num_versions: 1 } });
    const s = normalizeModelConfig(parseModelConfig(`backend: "onnxruntime" max_batch_size: 4 dynamic_batching { } sequence_batching { }`.replace(" sequence_batching { }", "")), "m");
    expect(s.name).toBe("m");
    expect(s.platform).toBe("onnxruntime_onnx");
    expect(s.dynamic_batching?.preferred_batch_size).toEqual([4]);
    expect(s.instance_group).toMatchObject([{ name: "m", kind: "KIND_CPU", count: 2 }]);
    const q = normalizeModelConfig(parseModelConfig(`backend: "identity" sequence_batching { }`), "q");
    expect(q.sequence_batching?.max_sequence_idle_microseconds).toBe(1_000_000);
  });

  it("rejects invalid configs with Triton's messages", () => {
    const bad = (text: string, re: RegExp) => expect(() => normalizeModelConfig(parseModelConfig(text), "m")).toThrow(re);
    bad(`platform: "tensorrt_plan"`, /unsupported backend 'tensorrt_plan'/);
    bad(`backend: "onnxruntime" input [ { name: "x" dims: [ 1 ] } ]`, /model input 'x' must specify 'data_type'/);
    bad(`backend: "onnxruntime" input [ { name: "x" data_type: TYPE_FP32 } ]`, /model input 'x' must specify 'dims'/);
    bad(`backend: "onnxruntime" output [ { name: "y" data_type: TYPE_FP32 dims: [ 0 ] } ]`, /model output 'y' dimension must be integer >= 1, or -1/);
    bad(`backend: "onnxruntime" max_batch_size: 2 dynamic_batching { preferred_batch_size: [ 4 ] }`, /preferred size must be <= max batch size/);
    bad(`name: "other" backend: "onnxruntime"`, /unexpected model name 'other'/);
  });

  it("completes and checks inputs and outputs against the model", () => {
    const c = normalizeModelConfig(parseModelConfig(`backend: "onnxruntime" max_batch_size: 8`), "m");
    completeFromModel(c, [{ name: "x", configType: "TYPE_FP32", dims: [-1, 4] }], [{ name: "y", configType: "TYPE_INT64", dims: [-1] }]);
    expect(c.input).toMatchObject([{ name: "x", data_type: "TYPE_FP32", dims: [4] }]);
    expect(c.output).toMatchObject([{ name: "y", data_type: "TYPE_INT64", dims: [1], reshape: { shape: [] } }]);
    const d = normalizeModelConfig(parseModelConfig(`backend: "onnxruntime" input [ { name: "x" data_type: TYPE_FP64 dims: [ 4 ] } ]`), "m");
    expect(() => completeFromModel(d, [{ name: "x", configType: "TYPE_FP32", dims: [4] }], [])).toThrow(/unexpected datatype TYPE_FP64 for inference input 'x', expecting TYPE_FP32/);
    const e = normalizeModelConfig(parseModelConfig(`backend: "onnxruntime" input [ { name: "z" data_type: TYPE_FP32 dims: [ 4 ] } ]`), "m");
    expect(() => completeFromModel(e, [{ name: "x", configType: "TYPE_FP32", dims: [4] }], [])).toThrow(/unexpected inference input 'z', allowed inputs are: x/);
  });

  it("parses version strings like Triton (std::stol)", () => {
    expect(parseVersion("")).toBe(-1);
    expect(parseVersion("3")).toBe(3);
    expect(() => parseVersion("abc")).toThrow(/failed to get model version from specified version string 'abc'/);
    expect(() => parseVersion("-2")).toThrow(/invalid model version specified '-2'/);
  });
});
