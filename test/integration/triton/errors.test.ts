// Triton's gRPC codes and messages for bad requests and unavailable models, deadlines and cancellation,
// queue policies, and typed `contents` accepted by the server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInferRequest } from "../../../gpu-backend/src/triton/client";
import { Status, TritonError } from "../../../gpu-backend/src/triton/errors";
import { affineModel, errorOf, slowModel, startServer, type TestServer } from "./support";

let s: TestServer;

const NOTE =
  "NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be prepended to each input shape. If you want to specify the full shape including the batch dim in your input dims config, try setting max_batch_size to zero. See the model configuration docs for more info on max_batch_size.";

beforeAll(async () => {
  s = await startServer({
    affine: affineModel("affine", null),
    slow: slowModel(400, "dynamic_batching { max_queue_delay_microseconds: 0 default_queue_policy { max_queue_size: 2 allow_timeout_override: true } }"),
    // A model whose version directory lacks model.onnx: it fails to load and stays UNAVAILABLE.
    broken: { config: `name: "broken" platform: "onnxruntime_onnx" max_batch_size: 0 input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] } ] output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]` },
    strings: { config: `name: "strings" backend: "identity" input [ { name: "S" data_type: TYPE_STRING dims: [ -1 ] } ] output [ { name: "T" data_type: TYPE_STRING dims: [ -1 ] } ]` },
    // A config.pbtxt that does not parse.
    bad_config: { config: `name: "bad_config" platform: "onnxruntime_onnx" max_batch_size: eight` },
  });
});

afterAll(async () => {
  await s?.stop();
});

const x14 = { x: { datatype: "FP32" as const, shape: [1, 4], data: [1, 2, 3, 4] } };

async function fails(p: () => Promise<unknown>): Promise<TritonError> {
  const e = await errorOf(p);
  expect(e).toBeInstanceOf(TritonError);
  return e as TritonError;
}

describe("unknown and unavailable models", () => {
  it("unknown model: NOT_FOUND with Triton's message", async () => {
    const e = await fails(() => s.client.infer("no_such_model", { inputs: x14 }));
    expect(e.code).toBe(Status.NOT_FOUND);
    expect(e.message).toBe("Request for unknown model: 'no_such_model' is not found");
    expect(e.isModelNotFound).toBe(true);
    expect(e.model).toBe("no_such_model");
    for (const call of [() => s.client.modelMetadata("no_such_model"), () => s.client.modelConfig("no_such_model"), () => s.client.modelReady("no_such_model")]) {
      const m = await fails(call);
      expect([m.code, m.message]).toEqual([Status.NOT_FOUND, "Request for unknown model: 'no_such_model' is not found"]);
    }
  });

  it("unknown version and malformed version strings", async () => {
    const e = await fails(() => s.client.infer("affine", { inputs: x14, version: 7 }));
    expect([e.code, e.message]).toEqual([Status.NOT_FOUND, "Request for unknown model: 'affine' version 7 is not found"]);
    const v = await fails(() => s.client.infer("affine", { inputs: x14, version: "latest" }));
    expect(v.code).toBe(Status.INVALID_ARGUMENT);
    expect(v.message).toMatch(/^failed to get model version from specified version string 'latest'/);
  });

  it("a model that failed to load is not ready, and the server is not ready (strict readiness)", async () => {
    const e = await fails(() => s.client.infer("broken", { inputs: { x: { datatype: "FP32", shape: [1], data: [1] } } }));
    expect([e.code, e.message]).toEqual([Status.NOT_FOUND, "Request for unknown model: 'broken' has no available versions"]);
    const v = await fails(() => s.client.infer("broken", { inputs: { x: { datatype: "FP32", shape: [1], data: [1] } }, version: 1 }));
    expect([v.code, v.message]).toEqual([Status.UNAVAILABLE, "Request for unknown model: 'broken' version 1 is not at ready state"]);
    const r = await fails(() => s.client.modelReady("broken", 1));
    expect(r.code).toBe(Status.UNAVAILABLE);
    expect(await s.client.serverReady()).toBe(false);
    expect(await s.client.healthCheck()).toBe("NOT_SERVING");
    expect(await s.client.serverLive()).toBe(true);
    const idx = await s.client.repositoryIndex();
    const broken = idx.find((m) => m.name === "broken");
    expect(broken).toMatchObject({ version: "1", state: "UNAVAILABLE" });
    expect(broken?.reason).toMatch(/unable to find '.*model\.onnx' for model 'broken'/);
    const bad = idx.find((m) => m.name === "bad_config");
    expect(bad).toMatchObject({ version: "", state: "UNAVAILABLE" });
    expect(bad?.reason).toMatch(/failed to parse config\.pbtxt of model 'bad_config'.*line 1/);
    expect((await s.client.repositoryIndex({ ready: true })).map((m) => m.name).sort()).toEqual(["affine", "slow", "strings"]);
  });
});

describe("bad requests", () => {
  it("wrong datatype", async () => {
    const e = await fails(() => s.client.infer("affine", { inputs: { x: { datatype: "FP64", shape: [1, 4], data: [1, 2, 3, 4] } }, requestId: "r1" }));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toBe("[request id: r1] inference input 'x' data-type is 'FP64', but model 'affine' expects 'FP32'");
    expect(e.requestId).toBe("r1");
  });

  it("wrong shape", async () => {
    const e = await fails(() => s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [2, 3], data: new Float32Array(6) } } }));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toBe(`[request id: <id_unknown>] unexpected shape for input 'x' for model 'affine'. Expected [-1,4], got [2,3]. ${NOTE}`);
    const rank = await fails(() => s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [4], data: new Float32Array(4) } } }));
    expect(rank.message).toBe(`[request id: <id_unknown>] unexpected shape for input 'x' for model 'affine'. Expected [-1,4], got [4]. ${NOTE}`);
  });

  it("batch larger than max_batch_size", async () => {
    const e = await fails(() => s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [9, 4], data: new Float32Array(36) } } }));
    expect([e.code, e.message]).toEqual([Status.INVALID_ARGUMENT, "[request id: <id_unknown>] inference request batch-size must be <= 8 for 'affine'"]);
  });

  it("wrong input names and counts, unknown outputs", async () => {
    const unknown = await fails(() => s.client.infer("affine", { inputs: { z: { datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] } } }));
    expect([unknown.code, unknown.message]).toEqual([Status.INVALID_ARGUMENT, "unexpected inference input 'z' for model 'affine'"]);
    const none = await fails(() => s.client.infer("affine", { inputs: {} }));
    expect(none.message).toBe(
      "[request id: <id_unknown>] expected 1 inputs but got 0 inputs for model 'affine'. Got input(s) [], but missing required input(s) ['x']. Please provide all required input(s).",
    );
    const out = await fails(() => s.client.infer("affine", { inputs: x14, outputs: ["nope"] }));
    expect([out.code, out.message]).toEqual([Status.INVALID_ARGUMENT, "unexpected inference output 'nope' for model 'affine'"]);
  });

  it("raw byte size that does not match the shape, and missing data", async () => {
    const msg = buildInferRequest("affine", { inputs: x14 });
    msg.raw_input_contents = [new Uint8Array(12)];
    const e = await fails(() => s.client.rawInfer(msg));
    expect([e.code, e.message]).toEqual([Status.INVALID_ARGUMENT, "[request id: <id_unknown>] input byte size mismatch for input 'x' for model 'affine'. Expected 16, got 12"]);
    msg.raw_input_contents = [];
    const m = await fails(() => s.client.rawInfer(msg));
    expect(m.message).toBe("unable to find data for input tensor 'x' for model 'affine' in request.");
  });

  it("typed contents are accepted, but not together with raw contents", async () => {
    const msg = buildInferRequest("affine", { inputs: x14 });
    msg.raw_input_contents = [];
    msg.inputs[0].contents = { fp32_contents: [1, 2, 3, 4] };
    const res = await s.client.rawInfer(msg);
    expect(res.outputs.map((o) => o.name)).toEqual(["y", "rowsum"]);
    expect(Array.from(new Float32Array(Uint8Array.from(res.raw_output_contents[0]).buffer))).toEqual([3, 5, 7, 9]);
    msg.raw_input_contents = [new Uint8Array(16)];
    const e = await fails(() => s.client.rawInfer(msg));
    expect(e.message).toBe("contents field must not be specified when using raw_input_contents for 'x' for model 'affine'");
    msg.raw_input_contents = [];
    msg.inputs[0].contents = { int_contents: [1, 2, 3, 4] };
    const t = await fails(() => s.client.rawInfer(msg));
    expect(t.message).toBe("unexpected explicit tensor data for input tensor 'x' for model 'affine' of type 'INT32', expected datatype 'FP32'");
  });

  it("request parameters with the wrong types", async () => {
    const msg = buildInferRequest("affine", { inputs: x14 });
    msg.parameters = { sequence_start: { int64_param: 1 } };
    const e = await fails(() => s.client.rawInfer(msg));
    expect([e.code, e.message]).toEqual([Status.INVALID_ARGUMENT, "invalid value type for 'sequence_start' parameter, expected bool_param."]);
    msg.parameters = { triton_secret: { bool_param: true } };
    expect((await fails(() => s.client.rawInfer(msg))).message).toMatch(/^parameter keys starting with 'triton_' are reserved for Triton usage/);
    // The client refuses the same locally.
    const local = await fails(() => s.client.infer("affine", { inputs: x14, parameters: { triton_secret: true } }));
    expect(local.code).toBe(Status.INVALID_ARGUMENT);
  });

  it("malformed BYTES tensors", async () => {
    const msg = buildInferRequest("strings", { inputs: { S: { datatype: "BYTES", shape: [2], data: ["ab", "c"] } } });
    const good = msg.raw_input_contents[0];
    const bad = async (raw: Uint8Array) => (await fails(() => s.client.rawInfer({ ...msg, raw_input_contents: [raw] }))).message;
    expect(await bad(good.subarray(0, good.byteLength - 3))).toBe(
      "[request id: <id_unknown>] incomplete string length indicator for inference input 'S' for model 'strings', expecting 4 bytes but only 2 bytes available. Please make sure the string length indicator is in one buffer.",
    );
    expect(await bad(good.subarray(0, 6))).toBe("[request id: <id_unknown>] expected 2 string elements for inference input 'S' for model 'strings', got 1");
    expect(await bad(Buffer.concat([good, Uint8Array.of(0, 0, 0, 0)]))).toBe(
      "[request id: <id_unknown>] unexpected number of string elements 3 for inference input 'S' for model 'strings', expecting 2",
    );
    // A BYTES tensor sent to an FP32 input hits the datatype check first, as in Triton.
    const f = buildInferRequest("affine", { inputs: x14 });
    f.inputs[0].datatype = "BYTES";
    expect((await fails(() => s.client.rawInfer(f))).message).toMatch(/data-type is 'BYTES', but model 'affine' expects 'FP32'/);
  });

  it("failed requests are counted in the statistics", async () => {
    const [before] = await s.client.modelStatistics("affine");
    await errorOf(() => s.client.infer("affine", { inputs: { x: { datatype: "FP32", shape: [1, 3], data: [1, 2, 3] } } }));
    const [after] = await s.client.modelStatistics("affine");
    expect(after.inferenceStats.fail.count - before.inferenceStats.fail.count).toBe(1);
  });
});

describe("deadlines and cancellation", () => {
  const one = { INPUT0: { datatype: "FP32" as const, shape: [1, 2], data: [1, 2] } };

  it("a deadline that passes gives DEADLINE_EXCEEDED quickly", async () => {
    const t0 = Date.now();
    const e = await fails(() => s.client.infer("slow", { inputs: one, timeoutMs: 100 }));
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(350);
    const t1 = Date.now();
    const a = await fails(() => s.client.infer("slow", { inputs: one, signal: AbortSignal.timeout(100) }));
    expect(a.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - t1).toBeLessThan(350);
    // The server keeps working.
    const ok = await s.client.infer("slow", { inputs: one, timeoutMs: 5000 });
    expect(Array.from(ok.tensor("OUTPUT0", "FP32").data)).toEqual([1, 2]);
  });

  it("an aborted call is CANCELLED, and a cancelled queued request never runs", async () => {
    // Let earlier calls drain so the single instance is free.
    await s.client.infer("slow", { inputs: one });
    const [before] = await s.client.modelStatistics("slow");
    const first = s.client.infer("slow", { inputs: one }); // occupies the only instance for 400 ms
    await new Promise((r) => setTimeout(r, 50));
    const ac = new AbortController();
    const second = s.client.infer("slow", { inputs: { INPUT0: { datatype: "FP32", shape: [1, 2], data: [3, 4] } }, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const e = (await errorOf(() => second)) as TritonError;
    expect(e.code).toBe(Status.CANCELLED);
    await first;
    await new Promise((r) => setTimeout(r, 50));
    const [after] = await s.client.modelStatistics("slow");
    expect(after.executionCount - before.executionCount).toBe(1);
    expect(after.inferenceCount - before.inferenceCount).toBe(1);
    // An already-aborted signal fails without a call.
    const pre = new AbortController();
    pre.abort();
    expect((await fails(() => s.client.infer("slow", { inputs: one, signal: pre.signal }))).code).toBe(Status.CANCELLED);
  });

  it("queue policy: a full queue is UNAVAILABLE and the per-request timeout rejects queued requests", async () => {
    const first = s.client.infer("slow", { inputs: one });
    await new Promise((r) => setTimeout(r, 50));
    // The instance is busy; the timeout (50 ms, allowed by allow_timeout_override) expires in the queue.
    const t = await fails(() => s.client.infer("slow", { inputs: one, parameters: { timeout: 50_000 } }));
    expect([t.code, t.message]).toEqual([Status.UNAVAILABLE, "Request timeout expired"]);
    const queued = [s.client.infer("slow", { inputs: one }), s.client.infer("slow", { inputs: one })];
    await new Promise((r) => setTimeout(r, 50));
    const full = await fails(() => s.client.infer("slow", { inputs: one, requestId: "q3" }));
    expect([full.code, full.message]).toEqual([Status.UNAVAILABLE, "[request id: q3] Exceeds maximum queue size"]);
    await Promise.all([first, ...queued]);
  });
});
