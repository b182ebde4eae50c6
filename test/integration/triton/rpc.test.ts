// The Triton client against the embedded backend over real gRPC: every RPC, every datatype, large tensors,
// zero-size tensors, external data and version layouts, and many calls in flight on one channel.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToStrings } from "../../../gpu-backend/src/triton/codec";
import { float32ToBf16, fp16ToFloat32, float32ToFp16 } from "../../../gpu-backend/src/lib/numeric";
import { TritonClient, type InferResult } from "../../../gpu-backend/src/triton/client";
import type { AnyTensor, DataType, InputTensor } from "../../../gpu-backend/src/triton/datatypes";
import { Status, TritonError } from "../../../gpu-backend/src/triton/errors";
import { ORT_DATATYPES, affineModel, allTypesModel, errorOf, identityAllModel, slowModel, startServer, vqLikeModel, type TestServer } from "./support";

let s: TestServer;

beforeAll(async () => {
  s = await startServer({
    all_types: allTypesModel(),
    identity_all: identityAllModel(),
    vq_like: vqLikeModel(),
    affine: affineModel("affine", null),
  });
});

afterAll(async () => {
  await s?.stop();
});

/** Test data for each datatype, with edge values. */
function sample(dt: DataType, n: number): InputTensor {
  const shape = [n];
  const pick = <T>(values: T[]) => Array.from({ length: n }, (_, i) => values[i % values.length]);
  switch (dt) {
    case "BOOL":
      return { datatype: dt, shape, data: pick([true, false, false, true]) };
    case "UINT8":
      return { datatype: dt, shape, data: Uint8Array.from(pick([0, 1, 127, 255])) };
    case "UINT16":
      return { datatype: dt, shape, data: Uint16Array.from(pick([0, 1, 65535, 4242])) };
    case "UINT32":
      return { datatype: dt, shape, data: Uint32Array.from(pick([0, 1, 4294967295, 123456789])) };
    case "UINT64":
      return { datatype: dt, shape, data: BigUint64Array.from(pick([0n, 1n, 2n ** 64n - 1n, 2n ** 53n + 1n])) };
    case "INT8":
      return { datatype: dt, shape, data: Int8Array.from(pick([-128, -1, 0, 127])) };
    case "INT16":
      return { datatype: dt, shape, data: Int16Array.from(pick([-32768, -1, 0, 32767])) };
    case "INT32":
      return { datatype: dt, shape, data: Int32Array.from(pick([-2147483648, -1, 0, 2147483647])) };
    case "INT64":
      return { datatype: dt, shape, data: BigInt64Array.from(pick([-(2n ** 63n), -1n, 2n ** 63n - 1n, 2n ** 53n + 1n])) };
    case "FP16":
      return { datatype: dt, shape, data: float32ToFp16(pick([0, -1.5, 65504, 2 ** -24])) };
    case "BF16":
      return { datatype: dt, shape, data: float32ToBf16(pick([0, -1.5, 3.0e38, 1e-30])) };
    case "FP32":
      return { datatype: dt, shape, data: Float32Array.from(pick([0, -1.5, 3.4e38, 1e-45])) };
    case "FP64":
      return { datatype: dt, shape, data: Float64Array.from(pick([0, -1.5, 1.7e308, 5e-324])) };
    case "BYTES":
      // (onnxruntime strings are C strings: no NUL inside; arbitrary bytes go through the identity model)
      return { datatype: dt, shape, data: pick(["", "héllo wörld", "tab\tnewline\n", "日本語"]) };
  }
}

function expected(t: InputTensor): unknown[] {
  if (t.datatype === "BOOL") return (t.data as boolean[]).map((b) => (b ? 1 : 0));
  if (t.datatype === "BYTES") return [...(t.data as string[])];
  return Array.from(t.data as ArrayLike<unknown>);
}

function actual(t: AnyTensor): unknown[] {
  if (t.datatype === "BYTES") return bytesToStrings(t.data);
  return Array.from(t.data as ArrayLike<unknown>);
}

async function inferAllTypes(n: number): Promise<{ sent: Record<string, InputTensor>; res: InferResult }> {
  const sent: Record<string, InputTensor> = {};
  for (const [dt] of ORT_DATATYPES) sent[`IN_${dt}`] = sample(dt, n);
  const res = await s.client.infer("all_types", { inputs: sent, requestId: `all-${n}` });
  return { sent, res };
}

describe("health and metadata", () => {
  it("answers liveness, readiness and the gRPC health check", async () => {
    expect(await s.client.serverLive()).toBe(true);
    expect(await s.client.serverReady()).toBe(true);
    expect(await s.client.healthCheck()).toBe("SERVING");
    expect(await s.client.modelReady("all_types")).toBe(true);
    expect(await s.client.modelReady("vq_like", 1)).toBe(true);
    expect(await s.client.modelReady("vq_like", "2")).toBe(true);
    const e = await errorOf(() => s.client.modelReady("nope"));
    expect(e).toBeInstanceOf(TritonError);
    expect((e as TritonError).code).toBe(Status.NOT_FOUND);
  });

  it("reports server metadata with Triton's name and extensions", async () => {
    const m = await s.client.serverMetadata();
    expect(m.name).toBe("triton");
    expect(m.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(m.extensions).toEqual(expect.arrayContaining(["sequence", "model_configuration", "statistics", "model_repository"]));
  });

  it("reports model metadata with the batch dimension as -1", async () => {
    const m = await s.client.modelMetadata("vq_like");
    expect(m).toEqual({
      name: "vq_like",
      versions: ["1", "2"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "pixels", datatype: "UINT8", shape: [-1, 3, -1, -1] }],
      outputs: [
        { name: "codes", datatype: "INT64", shape: [-1, -1, -1] },
        { name: "mean", datatype: "FP32", shape: [-1, -1, -1] },
      ],
    });
    const a = await s.client.modelMetadata("all_types", 1);
    expect(a.inputs.find((i) => i.name === "IN_BYTES")).toEqual({ name: "IN_BYTES", datatype: "BYTES", shape: [-1] });
  });

  it("returns the completed model config", async () => {
    const c = await s.client.modelConfig("vq_like");
    expect(c.name).toBe("vq_like");
    expect(c.max_batch_size).toBe(8);
    expect(c.backend).toBe("onnxruntime");
    expect(c.input[0]).toMatchObject({ name: "pixels", data_type: "TYPE_UINT8", dims: [3, -1, -1] });
    expect(c.dynamic_batching).toMatchObject({ max_queue_delay_microseconds: 1000, preferred_batch_size: [8] });
    expect(c.instance_group).toMatchObject([{ name: "vq_like_0", kind: "KIND_CPU", count: 1 }]);
    expect(c.version_policy?.all).toBeTruthy();
    const id = await s.client.modelConfig("identity_all");
    expect(id.backend).toBe("identity");
    expect(id.input.find((i) => i.name === "INPUT_BF16")?.data_type).toBe("TYPE_BF16");
  });

  it("lists the repository index", async () => {
    const idx = await s.client.repositoryIndex();
    expect(idx.map((m) => `${m.name}/${m.version}/${m.state}`).sort()).toEqual([
      "affine/1/READY",
      "all_types/1/READY",
      "identity_all/1/READY",
      "vq_like/1/READY",
      "vq_like/2/READY",
    ]);
    expect((await s.client.repositoryIndex({ ready: true })).length).toBe(5);
  });

  it("refuses explicit load/unload like Triton in model-control-mode none", async () => {
    const e = (await errorOf(() => s.client.loadModel("affine"))) as TritonError;
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toBe("explicit model load / unload is not allowed if polling is enabled");
    expect(((await errorOf(() => s.client.unloadModel("affine"))) as TritonError).code).toBe(Status.UNAVAILABLE);
  });

  it("counts inferences and executions in the statistics", async () => {
    const before = (await s.client.modelStatistics("affine"))[0];
    await s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [3, 4], data: new Float32Array(12) } } });
    const [after] = await s.client.modelStatistics("affine", 1);
    expect(after.name).toBe("affine");
    expect(after.version).toBe("1");
    expect(after.inferenceCount - before.inferenceCount).toBe(3);
    expect(after.executionCount - before.executionCount).toBe(1);
    expect(after.inferenceStats.success.count - before.inferenceStats.success.count).toBe(1);
    expect(after.inferenceStats.computeInfer.ns).toBeGreaterThan(0);
    expect(after.lastInference).toBeGreaterThan(Date.now() - 60_000);
    expect(after.batchStats.find((b) => b.batchSize === 3)?.computeInfer.count).toBeGreaterThanOrEqual(1);
    const all = await s.client.modelStatistics();
    expect(all.map((x) => `${x.name}/${x.version}`).sort()).toEqual(["affine/1", "all_types/1", "identity_all/1", "vq_like/1", "vq_like/2"]);
    const e = (await errorOf(() => s.client.modelStatistics("nope"))) as TritonError;
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toBe("requested model 'nope' is not available");
  });
});

describe("datatypes", () => {
  it("round-trips every datatype onnxruntime carries through a real model", async () => {
    const { sent, res } = await inferAllTypes(9);
    expect(res.id).toBe("all-9");
    expect(res.modelVersion).toBe("1");
    expect(Object.keys(res.outputs).sort()).toEqual(ORT_DATATYPES.map(([dt]) => `OUT_${dt}`).sort());
    for (const [dt] of ORT_DATATYPES) {
      const out = res.outputs[`OUT_${dt}`];
      expect(out.datatype).toBe(dt);
      expect(out.shape).toEqual([9]);
      expect(actual(out), dt).toEqual(expected(sent[`IN_${dt}`]));
    }
    expect(Array.from(fp16ToFloat32(res.tensor("OUT_FP16", "FP16").data).slice(0, 4))).toEqual([0, -1.5, 65504, 2 ** -24]);
  });

  it("round-trips BF16, FP16, arbitrary BYTES and more through the identity backend", async () => {
    const bytes = [new Uint8Array([0, 255, 1]), new Uint8Array(0), new Uint8Array([0x80, 0xc3])];
    const res = await s.client.infer("identity_all", {
      inputs: {
        INPUT_BF16: { datatype: "BF16", shape: [2, 2], data: Float32Array.of(1, -2.5, 3.0e38, 0.1) },
        INPUT_BYTES: { datatype: "BYTES", shape: [3, 1], data: bytes },
        INPUT_FP16: { datatype: "FP16", shape: [1, 2], data: [0.5, -65504] },
        INPUT_FP32: { datatype: "FP32", shape: [1, 1], data: [7] },
        INPUT_INT64: { datatype: "INT64", shape: [1, 2], data: [1n, -(2n ** 63n)] },
        INPUT_BOOL: { datatype: "BOOL", shape: [1, 3], data: [true, false, true] },
      },
      outputs: ["OUTPUT_BF16", "OUTPUT_BYTES", "OUTPUT_FP16", "OUTPUT_INT64", "OUTPUT_BOOL"],
    });
    expect(Object.keys(res.outputs).sort()).toEqual(["OUTPUT_BF16", "OUTPUT_BOOL", "OUTPUT_BYTES", "OUTPUT_FP16", "OUTPUT_INT64"]);
    const bf = res.tensor("OUTPUT_BF16", "BF16");
    expect(bf.shape).toEqual([2, 2]);
    expect(Array.from(bf.data)).toEqual(Array.from(float32ToBf16(Float32Array.of(1, -2.5, 3.0e38, 0.1))));
    expect(res.tensor("OUTPUT_BYTES", "BYTES").data.map((b) => Array.from(b))).toEqual(bytes.map((b) => Array.from(b)));
    expect(Array.from(fp16ToFloat32(res.tensor("OUTPUT_FP16", "FP16").data))).toEqual([0.5, -65504]);
    expect(Array.from(res.tensor("OUTPUT_INT64", "INT64").data)).toEqual([1n, -(2n ** 63n)]);
    expect(Array.from(res.tensor("OUTPUT_BOOL", "BOOL").data)).toEqual([1, 0, 1]);
  });

  it("carries zero-size tensors of every datatype", async () => {
    const { res } = await inferAllTypes(0);
    for (const [dt] of ORT_DATATYPES) {
      const out = res.outputs[`OUT_${dt}`];
      expect(out.shape, dt).toEqual([0]);
      expect(out.data.length, dt).toBe(0);
    }
  });
});

describe("UINT8 / INT64 / FP32 model with external data, batching and version layouts", () => {
  const pixels = (b: number, h: number, w: number, seed: number) => {
    const d = new Uint8Array(b * 3 * h * w);
    for (let i = 0; i < d.length; i++) d[i] = (i * 37 + seed) % 256;
    return d;
  };
  const reference = (px: Uint8Array, b: number, h: number, w: number, scale: number) => {
    const mean = new Float32Array(b * h * w);
    for (let n = 0; n < b; n++)
      for (let y = 0; y < h * w; y++) mean[n * h * w + y] = Math.fround((Math.fround(px[(n * 3) * h * w + y] + px[(n * 3 + 1) * h * w + y]) + px[(n * 3 + 2) * h * w + y]) / 3) * scale;
    return mean;
  };

  it("serves version 1 (model.onnx + model.onnx.data) and version 2 (model.onnx/ directory)", async () => {
    const px = pixels(2, 4, 5, 1);
    for (const [version, scale] of [
      [1, 1],
      [2, 2],
    ] as const) {
      const res = await s.client.infer("vq_like", { inputs: { pixels: { datatype: "UINT8", shape: [2, 3, 4, 5], data: px } }, version });
      expect(res.modelVersion).toBe(String(version));
      const mean = res.tensor("mean", "FP32");
      const codes = res.tensor("codes", "INT64");
      expect(mean.shape).toEqual([2, 4, 5]);
      expect(codes.shape).toEqual([2, 4, 5]);
      const ref = reference(px, 2, 4, 5, scale);
      for (let i = 0; i < ref.length; i++) {
        expect(mean.data[i]).toBeCloseTo(ref[i], 4);
        expect(codes.data[i]).toBe(BigInt(Math.floor(mean.data[i])));
      }
    }
    // No version = the latest ready version.
    expect((await s.client.infer("vq_like", { inputs: { pixels: { datatype: "UINT8", shape: [1, 3, 1, 1], data: [3, 3, 3] } } })).modelVersion).toBe("2");
  });

  it("accepts inputs with a zero-sized dimension", async () => {
    const res = await s.client.infer("vq_like", { inputs: { pixels: { datatype: "UINT8", shape: [1, 3, 0, 5], data: new Uint8Array(0) } } });
    expect(res.tensor("codes", "INT64").shape).toEqual([1, 0, 5]);
    expect(res.tensor("mean", "FP32").data.length).toBe(0);
  });
});

describe("large tensors and concurrency", () => {
  it("sends and receives a tensor over 4 MiB each way (the grpc-js default limit)", async () => {
    const n = 1_200_000; // 4.8 MB of FP32 in the request and in the response (> 4 MiB = 4194304 bytes)
    const big = new Float32Array(n);
    for (let i = 0; i < n; i++) big[i] = i * 0.5;
    const inputs: Record<string, InputTensor> = {};
    for (const [dt] of ORT_DATATYPES) inputs[`IN_${dt}`] = sample(dt, 1);
    inputs.IN_FP32 = { datatype: "FP32", shape: [n], data: big };
    const res = await s.client.infer("all_types", { inputs, outputs: ["OUT_FP32"] });
    const out = res.tensor("OUT_FP32", "FP32");
    expect(out.data.byteLength).toBeGreaterThan(4 * 1024 * 1024);
    expect(out.data[n - 1]).toBe((n - 1) * 0.5);
    expect(Buffer.compare(Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength), Buffer.from(big.buffer))).toBe(0);

    // The same call with grpc-js's default receive limit fails: the raised limit is what makes it work.
    const limited = new TritonClient(s.backend.url, { channelOptions: { "grpc.max_receive_message_length": 4 * 1024 * 1024 } });
    try {
      const e = (await errorOf(() => limited.infer("all_types", { inputs, outputs: ["OUT_FP32"] }))) as TritonError;
      expect(e.code).toBe(Status.RESOURCE_EXHAUSTED);
    } finally {
      limited.close();
    }
  });

  it("runs many calls in flight on one channel, each getting its own answer", async () => {
    const calls = Array.from({ length: 48 }, (_, k) => {
      const x = Float32Array.from({ length: 4 * ((k % 3) + 1) }, (_, i) => k * 100 + i);
      return s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [(k % 3) + 1, 4], data: x } }, requestId: `c${k}` }).then((r) => ({ k, x, r }));
    });
    const results = await Promise.all(calls);
    for (const { k, x, r } of results) {
      expect(r.id).toBe(`c${k}`);
      expect(Array.from(r.tensor("y", "FP32").data)).toEqual(Array.from(x, (v) => v * 2 + 1));
      const rowsum = r.tensor("rowsum", "FP32");
      expect(rowsum.shape).toEqual([(k % 3) + 1, 1]);
      expect(rowsum.data[0]).toBe(x[0] + x[1] + x[2] + x[3]);
    }
  });

  it("returns only the requested outputs", async () => {
    const r = await s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] } }, outputs: ["rowsum"] });
    expect(Object.keys(r.outputs)).toEqual(["rowsum"]);
    expect(Array.from(r.tensor("rowsum", "FP32").data)).toEqual([10]);
  });
});

describe("streaming inference", () => {
  it("matches many interleaved responses to their requests by id", async () => {
    const stream = s.client.openStream();
    const calls = Array.from({ length: 20 }, (_, k) =>
      k % 2 === 0
        ? stream.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 4], data: [k, k, k, k] } } }).then((r) => expect(r.tensor("rowsum", "FP32").data[0]).toBe(4 * k))
        : stream
            .infer("vq_like", { inputs: { pixels: { datatype: "UINT8", shape: [1, 3, 1, 1], data: [k, k, k] } }, requestId: `vq-${k}` })
            .then((r) => {
              expect(r.id).toBe(`vq-${k}`);
              expect(r.parameters.triton_final_response).toBe(true);
              expect(r.tensor("codes", "INT64").data[0]).toBe(BigInt(2 * k));
            }),
    );
    await Promise.all(calls);
    expect(stream.inFlight).toBe(0);
    await stream.end();
  });

  it("reports a failed request in band and keeps the stream open", async () => {
    const stream = s.client.openStream();
    const bad = (await errorOf(() => stream.infer("nope", { inputs: {}, requestId: "bad" }))) as TritonError;
    expect(bad.inBand).toBe(true);
    expect(bad.requestId).toBe("bad");
    expect(bad.message).toBe("Request for unknown model: 'nope' is not found");
    expect(bad.code).toBe(Status.NOT_FOUND);
    const ok = await stream.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 4], data: [1, 1, 1, 1] } } });
    expect(ok.tensor("rowsum", "FP32").data[0]).toBe(4);
    await stream.end();
  });

  it("ends the stream with a real status in triton_grpc_error mode", async () => {
    const stream = s.client.openStream({ grpcErrorMode: true });
    const e = (await errorOf(() => stream.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 3], data: [1, 1, 1] } } }))) as TritonError;
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.inBand).toBe(false);
    expect(e.message).toMatch(/unexpected shape for input 'x' for model 'affine'/);
    await stream.closed;
    const after = (await errorOf(() => stream.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 4], data: [1, 1, 1, 1] } } }))) as TritonError;
    expect(after.code).toBe(Status.INVALID_ARGUMENT);
  });

  it("cancels the whole stream", async () => {
    const stream = s.client.openStream();
    const p = stream.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 4], data: [1, 1, 1, 1] } } });
    stream.cancel();
    const e = (await errorOf(() => p)) as TritonError;
    expect(e.code).toBe(Status.CANCELLED);
  });
});

describe("model configuration selection", () => {
  it("uses configs/<name>.pbtxt when started with configName (Triton's --model-config-name)", async () => {
    const model = slowModel(0);
    model.configs = { alt: model.config.replace("max_batch_size: 8", "max_batch_size: 2") };
    const other = slowModel(0);
    const srv = await startServer({ slow: model, other: { config: other.config.replace('name: "slow"', 'name: "other"') } }, { configName: "alt" });
    try {
      expect((await srv.client.modelConfig("slow")).max_batch_size).toBe(2);
      expect((await srv.client.modelConfig("other")).max_batch_size).toBe(8);
    } finally {
      await srv.stop();
    }
  });
});
