import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../gpu-backend/src/builder/onnx/graph-builder";
import { readSafetensorsHeader, writeSafetensors } from "../../../gpu-backend/src/builder/safetensors";

function affine(): GraphBuilder {
  const g = new GraphBuilder("affine");
  const x = g.input("x", "FLOAT", ["B", 3]);
  const w = g.initializer("w", { dtype: "FLOAT", dims: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
  const b = g.constFloat([0.5, -0.5]);
  const y = g.op("Add", [g.op("MatMul", [x, w]), b]);
  const s = g.op("ReduceSum", [y, g.constInt64([1])], { keepdims: 0 });
  g.op("Identity", [y], {}, g.output("y", "FLOAT", ["B", 2]));
  g.op("Mul", [s, g.scalarFloat(2)], {}, g.output("s", "FLOAT", ["B"]));
  g.op("Softmax", [y], { axis: -1 }, g.output("p", "FLOAT", ["B", 2]));
  return g;
}

describe("ONNX graph builder", () => {
  it("writes a model onnxruntime runs with the expected numbers", async () => {
    const session = await ort.InferenceSession.create(affine().toBytes());
    const x = new ort.Tensor("float32", Float32Array.from([1, 0, 0, 0, 1, 1]), [2, 3]);
    const out = await session.run({ x });
    expect(Array.from(out.y.data as Float32Array)).toEqual([1.5, 1.5, 8.5, 9.5]);
    expect(Array.from(out.s.data as Float32Array)).toEqual([6, 36]);
    expect(out.p.dims).toEqual([2, 2]);
  });

  it("moves large initializers to external data and references checkpoint bytes in place", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gb-"));
    const ckpt = join(dir, "w.safetensors");
    await writeSafetensors(ckpt, { w: { dtype: "F32", shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) } });
    const [entry] = await readSafetensorsHeader(ckpt);
    const g = new GraphBuilder("ext");
    const x = g.input("x", "FLOAT", [1, 3]);
    const w = g.initializer("w", { dtype: "FLOAT", dims: [3, 2], data: { location: "w.safetensors", offset: entry.offset, length: entry.length } });
    const big = g.initializer("big", { dtype: "FLOAT", dims: [2, 1024], data: new Float32Array(2048).fill(0.25) });
    const y = g.op("MatMul", [x, w]);
    g.op("MatMul", [y, big], {}, g.output("z", "FLOAT", [1, 1024]));
    const sizes = await g.save(join(dir, "model.onnx"), { externalThresholdBytes: 1024 });
    expect(sizes.externalBytes).toBe(8192);
    expect((await readFile(join(dir, "model.onnx.data"))).byteLength).toBe(8192);
    const session = await ort.InferenceSession.create(join(dir, "model.onnx"));
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 1, 1]), [1, 3]) });
    expect((out.z.data as Float32Array)[0]).toBeCloseTo((9 + 12) * 0.25, 5);
  });
});
