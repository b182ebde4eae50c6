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
    expect(call.recomputeLists).toBe(2);
    // branch 1's targets are branch 0's shifted by -1: one list and a shift per branch
    expect([call.targetLists, Array.from(call.targets), Array.from(call.targetShift)]).toEqual([1, [3, 4], [0, -1]]);
    expect([call.select, Array.from(call.quantileRanks)]).toEqual([false, [0, 0, 0, 0]]);
    expect(Array.from(call.temperature)).toEqual([1]);
  });

  it("recomputes every position 0..L-1 on a refresh step, sent as an empty list", () => {
    const call = packCachedStep(inputs, { sequenceId: 1n, start: true, end: false }, 5);
    expect([call.recomputeLists, call.recomputeLength, call.recompute.length]).toEqual([1, 5, 0]);
    expect(call.tokens).toBe(9);
  });

  it("sends a target list per branch when the branches are not shifts of each other", () => {
    const call = packCachedStep({ ...inputs, targets: [i32([3, 4]), i32([0, 3])] }, { sequenceId: 1n, start: true, end: false }, 5);
    expect([call.targetLists, Array.from(call.targets), Array.from(call.targetShift)]).toEqual([2, [3, 4, 0, 3], [0, 0]]);
  });

  it("asks for the next recompute sets at the quantile's ranks and splits the selection per branch over its own row", () => {
    const call = packCachedStep(inputs, { sequenceId: 1n, start: true, end: false, selectForRatio: 0.5 }, 5);
    // quantile 0.5 over 5 positions: rank 2; over 4: between ranks 1 and 2
    expect([call.select, Array.from(call.quantileRanks)]).toEqual([true, [2, 2, 1, 2]]);
    const codes = Uint8Array.of(2, 0, 2, 1, 0, 2, 1, 0, 0, 0);
    const out = unpackCachedStep(call, { tokens: Int32Array.of(7, 8), confidence: Float32Array.of(0.5, 0.25), codes, quantile: Float32Array.of(1, 1, 2, 3) });
    expect(Array.from(out.tokens)).toEqual([7, 8]);
    expect(out.recomputeSelection?.map((b) => [Array.from(b.codes), b.low, b.high])).toEqual([
      [[2, 0, 2, 1, 0], 1, 1],
      [[2, 1, 0, 0], 2, 3],
    ]);
    expect(() => unpackCachedStep(call, { tokens: new Int32Array(2), confidence: new Float32Array(2) })).toThrow(CachedCallError);
    expect(() => unpackCachedStep(call, { tokens: new Int32Array(1), confidence: new Float32Array(1), codes, quantile: new Float32Array(4) })).toThrow(CachedCallError);
  });

  it("ends a sequence with a one-position step of its last call", () => {
    const last = packCachedStep(inputs, { sequenceId: 9n, start: true, end: false }, 5);
    const end = endingCall(last);
    expect([end.sequenceId, end.start, end.end, end.recomputeLength, end.recomputeLists, Array.from(end.recompute, Number), end.select]).toEqual([9n, false, true, 1, 1, [0], false]);
  });

  it("refuses positions outside a row", () => {
    expect(() => packCachedStep(inputs, { sequenceId: 1n, start: false, end: false, recompute: [i32([5]), i32([0])] }, 5)).toThrow(/outside row/);
    expect(() => packCachedStep(inputs, { sequenceId: 1n, start: true, end: false }, 4)).toThrow(/exceeds L=4/);
  });
});
