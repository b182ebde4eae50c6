import { describe, expect, it } from "vitest";
import { packStep, unpackStep, PackError, type ModeTensors } from "../../../gpu-backend/src/engine/packer";
import type { StepInputs } from "../../../gpu-backend/src/engine/step";
import { bucketFor, parseBuckets } from "../../../gpu-backend/src/batcher/buckets";
import { fakeOutputs } from "../batcher/fake-engine";

const i32 = (a: number[]) => Int32Array.from(a);
const f32 = (a: number[]) => Float32Array.from(a);

function img(k: number, m: number, rowLen: (b: number) => number, base = 0): StepInputs {
  const branches = Array.from({ length: k }, (_, b) => Int32Array.from({ length: rowLen(b) }, (_, p) => base + b * 1000 + p + 1));
  const targets = Array.from({ length: k }, (_, b) => Int32Array.from({ length: m }, (_, j) => rowLen(b) - m + j));
  return { mode: "image", branches, targets, weights: Float32Array.from({ length: k }, (_, b) => b + 1), uniforms: Float32Array.from({ length: m }, (_, j) => j / m), temperature: 0.5 + base };
}

/** The [G,K,M] flat indices the engine forms: the (one or per-branch) target list plus the branch offset. */
function flat(t: ModeTensors): number[] {
  const out: number[] = [];
  for (let g = 0; g < t.count; g++)
    for (let k = 0; k < t.branches; k++)
      for (let m = 0; m < t.slots; m++) out.push(t.targets[(g * t.lists + (t.lists === 1 ? 0 : k)) * t.slots + m] + t.offsets[g * t.branches + k]);
  return out;
}

describe("packStep", () => {
  it("pads rows to L, records seq_lens and flat row*L+pos targets", () => {
    const a: StepInputs = { mode: "image", branches: [i32([5, 6, 7]), i32([8, 9])], targets: [i32([1, 2]), i32([0, 1])], weights: f32([5, -4]), uniforms: f32([0.25, 0.75]), temperature: 1 };
    const call = packStep([a], 4);
    expect(call.rows).toBe(2);
    expect(call.length).toBe(4);
    expect(Array.from(call.inputIds, Number)).toEqual([5, 6, 7, 0, 8, 9, 0, 0]);
    expect(Array.from(call.seqLens, Number)).toEqual([3, 2]);
    expect(call.image.count).toBe(1);
    expect(call.image.branches).toBe(2);
    expect(call.image.slots).toBe(2);
    expect(flat(call.image)).toEqual([1, 2, 4, 5]);
    // branch 1's targets are branch 0's shifted by -1: one list and an offset cross the wire
    expect([call.image.lists, Array.from(call.image.targets), Array.from(call.image.offsets)]).toEqual([1, [1, 2], [0, 3]]);
    expect(Array.from(call.image.weights)).toEqual([5, -4]);
    expect(Array.from(call.image.uniforms)).toEqual([0.25, 0.75]);
    expect(Array.from(call.image.temperature)).toEqual([1]);
    // empty text mode has well-formed shapes
    expect(call.text.count).toBe(0);
    expect(call.text.targets.length).toBe(0);
    expect(call.tokens).toBe(5);
  });

  it("pads K with weight-0 copies of branch 0 and M with ignored slots in the request's own row", () => {
    const a = img(3, 4, (b) => 10 - b); // K=3, M=4
    const b = img(1, 2, () => 6, 100); // K=1, M=2
    const call = packStep([a, b], 16);
    expect(call.rows).toBe(4);
    expect(call.image.branches).toBe(3);
    expect(call.image.slots).toBe(4);
    const T = flat(call.image);
    // request b: row 3; branch 0 targets at positions 4,5, then 2 ignored slots repeating its first target
    const bBase = 1 * 3 * 4;
    expect(T.slice(bBase, bBase + 4)).toEqual([3 * 16 + 4, 3 * 16 + 5, 3 * 16 + 4, 3 * 16 + 4]);
    // padded branches 1 and 2 of b: copies of branch 0 with weight 0
    expect(T.slice(bBase + 4, bBase + 8)).toEqual(T.slice(bBase, bBase + 4));
    expect(Array.from(call.image.weights)).toEqual([1, 2, 3, 1, 0, 0]);
    expect(Array.from(call.image.uniforms).slice(4)).toEqual([0, 0.5, 0, 0]);
    expect(call.members.map((m) => [m.index, m.rowBase, m.branchCount, m.slotCount])).toEqual([
      [0, 0, 3, 4],
      [1, 3, 1, 2],
    ]);
  });

  it("mixes image and text requests in one call", () => {
    const a = img(2, 3, () => 8);
    const t: StepInputs = { ...img(1, 5, () => 9, 7), mode: "text" };
    const c = img(1, 1, () => 4, 3);
    const call = packStep([a, t, c], 12);
    expect(call.image.count).toBe(2);
    expect(call.text.count).toBe(1);
    expect(call.members.map((m) => `${m.mode}${m.index}@${m.rowBase}`)).toEqual(["image0@0", "text0@2", "image1@3"]);
    expect(flat(call.text)).toEqual([2 * 12 + 4, 2 * 12 + 5, 2 * 12 + 6, 2 * 12 + 7, 2 * 12 + 8]);
  });

  it("sends a list per branch only when a request's branches are not shifts of each other", () => {
    const shifted = img(2, 3, (b) => 9 - b);
    const general: StepInputs = { ...img(2, 3, () => 9, 5), targets: [i32([2, 4, 6]), i32([1, 4, 8])] };
    const one = packStep([shifted], 16);
    expect([one.image.lists, one.image.targets.length]).toEqual([1, 3]);
    const both = packStep([shifted, general], 16);
    expect([both.image.lists, both.image.targets.length, Array.from(both.image.offsets)]).toEqual([2, 12, [0, 0, 0, 0]]);
    expect(flat(both.image)).toEqual([6, 7, 8, 16 + 5, 16 + 6, 16 + 7, 32 + 2, 32 + 4, 32 + 6, 48 + 1, 48 + 4, 48 + 8]);
    expect(flat(both.image).slice(0, 6)).toEqual(flat(one.image));
  });

  it("rejects rows longer than L and inconsistent inputs", () => {
    expect(() => packStep([img(1, 2, () => 9)], 8)).toThrow(PackError);
    const bad = img(2, 2, () => 5);
    bad.weights = f32([1]);
    expect(() => packStep([bad], 8)).toThrow(/weights/);
    const oob = img(1, 1, () => 5);
    oob.targets[0][0] = 5;
    expect(() => packStep([oob], 8)).toThrow(/outside/);
  });

  it("unpacks per request, dropping padded slots; results do not depend on batch mates", () => {
    const a = img(2, 3, (b) => 20 - b);
    const b = img(3, 7, () => 30, 50);
    const t: StepInputs = { ...img(2, 4, () => 25, 9), mode: "text" };
    const alone = [a, b, t].map((x) => unpackStep(packStep([x], 32), fakeOutputs(packStep([x], 32)))[0]);
    const call = packStep([a, b, t], 32);
    const together = unpackStep(call, fakeOutputs(call));
    expect(together.map((o) => o.tokens.length)).toEqual([3, 7, 4]);
    for (let i = 0; i < 3; i++) {
      expect(Array.from(together[i].tokens)).toEqual(Array.from(alone[i].tokens));
      expect(Array.from(together[i].confidence)).toEqual(Array.from(alone[i].confidence));
    }
  });

  it("reads int64, int32 and number token arrays", () => {
    const a = img(1, 2, () => 4);
    const call = packStep([a], 4);
    const conf = f32([0.1, 0.2]);
    const empty = { textTokens: new BigInt64Array(0), textProbability: new Float32Array(0) };
    expect(Array.from(unpackStep(call, { imageTokens: BigInt64Array.from([3n, 4n]), imageConfidence: conf, ...empty })[0].tokens)).toEqual([3, 4]);
    expect(Array.from(unpackStep(call, { imageTokens: i32([5, 6]), imageConfidence: conf, ...empty })[0].tokens)).toEqual([5, 6]);
    expect(Array.from(unpackStep(call, { imageTokens: [7, 8], imageConfidence: conf, ...empty })[0].tokens)).toEqual([7, 8]);
    expect(() => unpackStep(call, { imageTokens: [7], imageConfidence: conf, ...empty })).toThrow(PackError);
  });
});

describe("buckets", () => {
  it("rounds up to the next edge", () => {
    expect(bucketFor(1)).toBe(128);
    expect(bucketFor(128)).toBe(128);
    expect(bucketFor(129)).toBe(256);
    expect(bucketFor(4290)).toBe(4608); // 1024² t2i: len(P)+4164
    expect(bucketFor(20000)).toBe(20480);
    expect(bucketFor(100, [64, 256])).toBe(256);
    expect(parseBuckets("512, 128,512")).toEqual([128, 512]);
    expect(() => parseBuckets("x")).toThrow();
  });
});
