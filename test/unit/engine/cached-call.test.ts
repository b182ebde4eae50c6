import { describe, expect, it } from "vitest";
import { CachedCallError, endingCall, packCachedStep, unpackCachedStep } from "../../../gpu-backend/src/engine/cached-call";
import type { StepInputs } from "../../../gpu-backend/src/engine/step";

const i32 = (a: number[]) => Int32Array.from(a);
const inputs: StepInputs = {
  mode: "image",
  branches: [i32([5, 6, 7, 8, 9]), i32([1, 2, 8, 9])],
  targets: [i32([3, 4]), i32([2, 3])],
  weights: Float32Array.of(5, -4),
  uniforms: Float32Array.of(0.25, 0.75),
  temperature: 1,
};

describe("cached call", () => {
  it("packs one request's rows, recompute sets (padded with the branch's first position) and targets", () => {
    const call = packCachedStep(inputs, { sequenceId: 42n, start: false, end: false, recompute: [i32([1, 3]), i32([0])] }, 5);
    expect([call.branches, call.length, call.recomputeLength, call.slots, call.tokens]).toEqual([2, 5, 2, 2, 3]);
    expect(Array.from(call.inputIds, Number)).toEqual([5, 6, 7, 8, 9, 1, 2, 8, 9, 0]);
    expect(Array.from(call.seqLens, Number)).toEqual([5, 4]);
    expect(Array.from(call.recompute, Number)).toEqual([1, 3, 0, 0]);
    expect(Array.from(call.targets, Number)).toEqual([3, 4, 2, 3]);
    expect(Array.from(call.temperature)).toEqual([1]);
  });

  it("recomputes every position of each row on a refresh step", () => {
    const call = packCachedStep(inputs, { sequenceId: 1n, start: true, end: false }, 5);
    expect(call.recomputeLength).toBe(5);
    expect(Array.from(call.recompute, Number)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 0]);
    expect(call.tokens).toBe(9);
  });

  it("splits the max logits per branch over its own row", () => {
    const call = packCachedStep(inputs, { sequenceId: 1n, start: true, end: false }, 5);
    const out = unpackCachedStep(call, { tokens: BigInt64Array.of(7n, 8n), confidence: Float32Array.of(0.5, 0.25), maxLogit: Float32Array.from({ length: 10 }, (_, i) => i) });
    expect(Array.from(out.tokens)).toEqual([7, 8]);
    expect(out.maxLogit?.map((m) => Array.from(m))).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(() => unpackCachedStep(call, { tokens: new BigInt64Array(1), confidence: new Float32Array(1), maxLogit: new Float32Array(10) })).toThrow(CachedCallError);
  });

  it("ends a sequence with a one-position step of its last call", () => {
    const last = packCachedStep(inputs, { sequenceId: 9n, start: true, end: false }, 5);
    const end = endingCall(last);
    expect([end.sequenceId, end.start, end.end, end.recomputeLength, Array.from(end.recompute, Number)]).toEqual([9n, false, true, 1, [0, 0]]);
  });

  it("refuses positions outside a row", () => {
    expect(() => packCachedStep(inputs, { sequenceId: 1n, start: false, end: false, recompute: [i32([5]), i32([0])] }, 5)).toThrow(/outside row/);
    expect(() => packCachedStep(inputs, { sequenceId: 1n, start: true, end: false }, 4)).toThrow(/exceeds L=4/);
  });
});
