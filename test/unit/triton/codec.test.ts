import { describe, expect, it } from "vitest";
import {
  bytesToStrings,
  decodeTensorData,
  deserializeBytes,
  encodeInputTensor,
  encodeTensorData,
  serializeBytes,
  toFloat32,
} from "../../../gpu-backend/src/triton/codec";
import { bf16ToFloat32, float32ToBf16, float32ToFp16, fp16ToFloat32 } from "../../../gpu-backend/src/lib/numeric";
import { configTypeOf, datatypeOfConfig, DATATYPES } from "../../../gpu-backend/src/triton/datatypes";
import { encodeParameters, buildInferRequest, decodeInferResponse } from "../../../gpu-backend/src/triton/client";
import { Status, TritonError, codeForMessage } from "../../../gpu-backend/src/triton/errors";

const bits = (f: number) => new Uint32Array(Float32Array.of(f).buffer)[0];

describe("FP16 conversion", () => {
  it("encodes exactly representable values and specials", () => {
    const h = float32ToFp16([0, -0, 1, -2, 0.5, 65504, Infinity, -Infinity, 2 ** -24, 2 ** -14]);
    expect(Array.from(h)).toEqual([0x0000, 0x8000, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x0400]);
    expect(fp16ToFloat32(float32ToFp16([NaN]))[0]).toBeNaN();
  });

  it("rounds to nearest even and overflows to infinity", () => {
    // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties to even -> 1.
    // 1 + 3*2^-11 is halfway between 1+2^-10 and 1+2^-9: ties to even -> 1 + 2^-9.
    const h = float32ToFp16([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 65520, 1e6, 2 ** -26]);
    expect(Array.from(h)).toEqual([0x3c00, 0x3c02, 0x3c01, 0x7c00, 0x7c00, 0x0000]);
  });

  it("round-trips every half value exactly through float32", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToFp16(fp16ToFloat32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!isNaN && back[i] !== i) throw new Error(`half ${i.toString(16)} came back as ${back[i].toString(16)}`);
    }
  });
});

describe("BF16 conversion", () => {
  it("takes the upper 16 bits with round to nearest even, keeping NaN", () => {
    const v = Float32Array.of(1, -2.5, 3.14159, Infinity, NaN);
    const b = float32ToBf16(v);
    expect(b[0]).toBe(0x3f80);
    expect(b[1]).toBe(0xc020);
    expect(b[2]).toBe(0x4049); // 3.14159 = 0x40490fd0 -> rounds down
    expect(b[3]).toBe(0x7f80);
    expect(bf16ToFloat32(b.subarray(4))[0]).toBeNaN();
    // exactly halfway: 0x3f808000 -> ties to even 0x3f80; 0x3f818000 -> 0x3f82
    const half = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x3f808001]).buffer);
    expect(Array.from(float32ToBf16(half))).toEqual([0x3f80, 0x3f82, 0x3f81]);
    expect(Array.from(bf16ToFloat32(Uint16Array.of(0x3f80, 0xc020)))).toEqual([1, -2.5]);
    expect(bits(bf16ToFloat32(Uint16Array.of(0x4049))[0])).toBe(0x40490000);
  });
});

describe("BYTES framing", () => {
  it("writes a 4-byte little-endian length before each element", () => {
    const buf = serializeBytes(["ab", new Uint8Array([0, 255]), ""]);
    expect(Array.from(buf)).toEqual([2, 0, 0, 0, 97, 98, 2, 0, 0, 0, 0, 255, 0, 0, 0, 0]);
    const items = deserializeBytes(buf, 3);
    expect(bytesToStrings([items[0]])).toEqual(["ab"]);
    expect(Array.from(items[1])).toEqual([0, 255]);
    expect(items[2].byteLength).toBe(0);
  });

  it("rejects truncated and miscounted tensors", () => {
    expect(() => deserializeBytes(Uint8Array.of(1, 0, 0))).toThrow(/incomplete string length indicator/);
    expect(() => deserializeBytes(Uint8Array.of(5, 0, 0, 0, 1))).toThrow(/runs past the end/);
    expect(() => deserializeBytes(serializeBytes(["a"]), 2)).toThrow(/expected 2 string elements, got 1/);
  });
});

describe("tensor encoding", () => {
  it("sends matching typed arrays without copying and converts plain arrays", () => {
    const f = new Float32Array([1, 2, 3]);
    const raw = encodeTensorData("FP32", f);
    expect(raw.buffer).toBe(f.buffer);
    expect(Array.from(new Float32Array(encodeTensorData("FP32", [1, 2, 3]).slice().buffer))).toEqual([1, 2, 3]);
    expect(Array.from(new BigInt64Array(encodeTensorData("INT64", [1, 2n, -3]).slice().buffer))).toEqual([1n, 2n, -3n]);
    expect(Array.from(encodeTensorData("BOOL", [true, false, true]))).toEqual([1, 0, 1]);
    expect(Array.from(new Uint16Array(encodeTensorData("FP16", [1, 2]).slice().buffer))).toEqual([0x3c00, 0x4000]);
    expect(Array.from(new Uint16Array(encodeTensorData("BF16", Float32Array.of(1)).slice().buffer))).toEqual([0x3f80]);
  });

  it("checks data length against the shape", () => {
    expect(() => encodeInputTensor({ datatype: "FP32", shape: [2, 2], data: [1, 2, 3] })).toThrow(/needs 4/);
    expect(() => encodeInputTensor({ datatype: "BYTES", shape: [2], data: ["a"] })).toThrow(/needs 2/);
    expect(() => encodeInputTensor({ datatype: "FP32", shape: [-1], data: [] })).toThrow(/invalid dimension/);
    expect(encodeInputTensor({ datatype: "INT64", shape: [0, 5], data: new BigInt64Array(0) }).raw.byteLength).toBe(0);
  });

  it("decodes aligned raw bytes as views and misaligned ones via one copy", () => {
    const backing = new Uint8Array(17);
    new Float32Array(backing.buffer, 4, 3).set([1.5, 2.5, 3.5]);
    const aligned = backing.subarray(4, 16);
    const v = decodeTensorData("FP32", [3], aligned);
    expect(v.buffer).toBe(backing.buffer);
    expect(Array.from(v)).toEqual([1.5, 2.5, 3.5]);
    const odd = new Uint8Array(13);
    odd.set(aligned, 1);
    const c = decodeTensorData("FP32", [3], odd.subarray(1));
    expect(Array.from(c)).toEqual([1.5, 2.5, 3.5]);
    expect(() => decodeTensorData("FP32", [4], aligned)).toThrow(/needs 16 bytes, got 12/);
  });

  it("converts any numeric tensor to float32", () => {
    expect(Array.from(toFloat32({ datatype: "FP16", shape: [1], data: Uint16Array.of(0x3c00) }))).toEqual([1]);
    expect(Array.from(toFloat32({ datatype: "INT64", shape: [2], data: BigInt64Array.of(3n, -4n) }))).toEqual([3, -4]);
  });

  it("maps datatypes to config enum names and back", () => {
    for (const dt of DATATYPES) expect(datatypeOfConfig(configTypeOf(dt))).toBe(dt);
    expect(configTypeOf("BYTES")).toBe("TYPE_STRING");
    expect(datatypeOfConfig("TYPE_INVALID")).toBe("INVALID");
  });
});

describe("request building", () => {
  it("types the reserved parameters as Triton expects and rejects triton_ keys", () => {
    const p = encodeParameters({ sequence_id: 42, sequence_start: true, sequence_end: false, priority: 1, timeout: 5000, custom: 1.5, flag: true, s: "x" });
    expect(p.sequence_id).toEqual({ int64_param: "42" });
    expect(encodeParameters({ sequence_id: "abc" }).sequence_id).toEqual({ string_param: "abc" });
    expect(encodeParameters({ sequence_id: 2n ** 63n - 1n }).sequence_id).toEqual({ int64_param: "9223372036854775807" });
    expect(p.sequence_start).toEqual({ bool_param: true });
    expect(p.priority).toEqual({ uint64_param: "1" });
    expect(p.timeout).toEqual({ int64_param: "5000" });
    expect(p.custom).toEqual({ double_param: 1.5 });
    expect(p.flag).toEqual({ bool_param: true });
    expect(p.s).toEqual({ string_param: "x" });
    expect(() => encodeParameters({ triton_foo: 1 })).toThrow(TritonError);
    expect(() => encodeParameters({ priority: -1 })).toThrow(/priority/);
  });

  it("sends every tensor as raw_input_contents in input order", () => {
    const msg = buildInferRequest("m", {
      inputs: { a: { datatype: "INT32", shape: [2], data: [1, 2] }, b: { datatype: "BYTES", shape: [1], data: ["hi"] } },
      outputs: ["y"],
      requestId: "r1",
      version: 3,
    });
    expect(msg.inputs.map((i) => [i.name, i.datatype, i.shape])).toEqual([
      ["a", "INT32", [2]],
      ["b", "BYTES", [1]],
    ]);
    expect(msg.raw_input_contents.map((r) => r.byteLength)).toEqual([8, 6]);
    expect(msg.model_version).toBe("3");
    expect(msg.outputs).toEqual([{ name: "y", parameters: {} }]);
  });

  it("pairs outputs with raw_output_contents by index and returns them by name", () => {
    const r = decodeInferResponse({
      model_name: "m",
      model_version: "1",
      id: "x",
      parameters: { triton_final_response: { bool_param: true, parameter_choice: "bool_param" } },
      outputs: [
        { name: "b", datatype: "INT64", shape: [1] },
        { name: "a", datatype: "FP32", shape: [2] },
      ],
      raw_output_contents: [new Uint8Array(BigInt64Array.of(7n).buffer), new Uint8Array(Float32Array.of(1, 2).buffer)],
    });
    expect(Array.from(r.tensor("a", "FP32").data)).toEqual([1, 2]);
    expect(Array.from(r.tensor("b", "INT64").data)).toEqual([7n]);
    expect(r.parameters.triton_final_response).toBe(true);
    expect(() => r.tensor("a", "INT64")).toThrow(/is FP32/);
    expect(() => r.tensor("zz")).toThrow(/no output 'zz'/);
  });
});

describe("errors", () => {
  it("keeps the gRPC code and Triton's message", () => {
    const e = new TritonError(Status.NOT_FOUND, "Request for unknown model: 'x' is not found", { model: "x" });
    expect(e.code).toBe(5);
    expect(e.codeName).toBe("NOT_FOUND");
    expect(e.message).toBe("Request for unknown model: 'x' is not found");
    expect(e.isModelNotFound).toBe(true);
  });

  it("infers codes of in-band stream errors from Triton's texts", () => {
    expect(codeForMessage("Request for unknown model: 'x' is not found")).toBe(Status.NOT_FOUND);
    expect(codeForMessage("[request id: 1] unexpected shape for input 'x' for model 'm'. Expected [2], got [3]. ")).toBe(Status.INVALID_ARGUMENT);
    expect(codeForMessage("Request for unknown model: 'x' version 1 is not at ready state")).toBe(Status.UNAVAILABLE);
    expect(codeForMessage("something else")).toBe(Status.UNKNOWN);
  });
});
