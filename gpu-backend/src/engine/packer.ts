// The packer: several requests' per-step engine inputs become ONE transformer call of the engine contract
// (contract.ts), and the call's outputs are split back per request.
//
//   rows      every branch of every request is one row of input_ids [R, L], right-padded with 0 to the
//             bucket length L; seq_lens carries the true length (keys past it are masked in the engine).
//   targets   flat `row * L + pos` indices, [G, K, M] for image mode and [H, J, N] for text mode, where
//             K (J) is the largest branch count and M (N) the largest target count of the call's requests.
//   padding   a request with fewer branches gets weight-0 branches that point at its own first branch (so
//             the padded logits are finite and contribute exactly 0); a request with fewer targets gets
//             ignored slots that point at position 0 of its own rows, with uniform 0, and are dropped
//             when unpacking.
//
// Pure and allocation-light: int64 tensors are written through an Int32Array view of the same buffer
// (lib/numeric.ts), which is ~10x faster than BigInt conversion per element.
import { int64Words, writeInt64 } from "../lib/numeric";
import type { StepInputs, StepMode, StepOutputs } from "./step";

export interface ModeTensors {
  /** Number of requests of this mode (G or H). */
  count: number;
  /** Padded branch count (K or J). */
  branches: number;
  /** Padded target count (M or N). */
  slots: number;
  targets: BigInt64Array; // [count, branches, slots]
  weights: Float32Array; // [count, branches]
  uniforms: Float32Array; // [count, slots]
  temperature: Float32Array; // [count]
}

export interface PackedMember {
  mode: StepMode;
  /** Index of the request within its mode (g or h). */
  index: number;
  /** First row of the request in input_ids. */
  rowBase: number;
  /** True branch count K_i and target count M_i. */
  branchCount: number;
  slotCount: number;
  /** Sum of the true lengths of the request's rows (tokens through the transformer this step). */
  tokens: number;
}

export interface PackedCall {
  /** Row count R and padded length L. */
  rows: number;
  length: number;
  inputIds: BigInt64Array; // [R, L]
  seqLens: BigInt64Array; // [R]
  image: ModeTensors;
  text: ModeTensors;
  members: PackedMember[];
  /** Sum of true row lengths (what the transformer really processes). */
  tokens: number;
}

export interface EngineOutputs {
  imageTokens: ArrayLike<number | bigint> | BigInt64Array | Int32Array;
  imageConfidence: Float32Array;
  textTokens: ArrayLike<number | bigint> | BigInt64Array | Int32Array;
  textProbability: Float32Array;
}

export class PackError extends Error {
  override name = "PackError";
}

function checkInput(input: StepInputs, which: number): { k: number; m: number; longest: number } {
  const k = input.branches.length;
  if (k === 0) throw new PackError(`request ${which}: no branches`);
  if (input.targets.length !== k) throw new PackError(`request ${which}: ${input.targets.length} target lists for ${k} branches`);
  if (input.weights.length !== k) throw new PackError(`request ${which}: ${input.weights.length} weights for ${k} branches`);
  const m = input.targets[0].length;
  if (input.uniforms.length !== m) throw new PackError(`request ${which}: ${input.uniforms.length} uniforms for ${m} targets`);
  let longest = 0;
  for (let b = 0; b < k; b++) {
    const row = input.branches[b];
    const t = input.targets[b];
    if (t.length !== m) throw new PackError(`request ${which}: branch ${b} has ${t.length} targets, branch 0 has ${m}`);
    for (let j = 0; j < m; j++) {
      if (t[j] < 0 || t[j] >= row.length) throw new PackError(`request ${which}: branch ${b} target ${t[j]} outside row of ${row.length}`);
    }
    if (row.length > longest) longest = row.length;
  }
  return { k, m, longest };
}

/** The longest row of a request's inputs (for bucketing). */
export function longestRow(input: StepInputs): number {
  let longest = 0;
  for (const r of input.branches) if (r.length > longest) longest = r.length;
  return longest;
}

/**
 * Packs the inputs of several requests into one contract call. `length` is the row length L (the bucket);
 * it must hold every row. Requests keep their order within each mode.
 */
export function packStep(inputs: readonly StepInputs[], length: number): PackedCall {
  const shapes = inputs.map((inp, i) => checkInput(inp, i));
  let rows = 0;
  let imgCount = 0, imgK = 0, imgM = 0;
  let txtCount = 0, txtK = 0, txtM = 0;
  for (let i = 0; i < inputs.length; i++) {
    const s = shapes[i];
    if (s.longest > length) throw new PackError(`request ${i}: row of ${s.longest} tokens exceeds L=${length}`);
    rows += s.k;
    if (inputs[i].mode === "image") {
      imgCount++;
      imgK = Math.max(imgK, s.k);
      imgM = Math.max(imgM, s.m);
    } else {
      txtCount++;
      txtK = Math.max(txtK, s.k);
      txtM = Math.max(txtM, s.m);
    }
  }
  // An empty mode still has well-formed shapes: [0, 1, 0] targets, [0, 1] weights, [0, 0] uniforms.
  if (imgCount === 0) imgK = 1;
  if (txtCount === 0) txtK = 1;

  const inputIds = new BigInt64Array(rows * length);
  const ids32 = int64Words(inputIds);
  const seqLens = new BigInt64Array(rows);
  const image = allocMode(imgCount, imgK, imgM);
  const text = allocMode(txtCount, txtK, txtM);
  const img32 = int64Words(image.targets);
  const txt32 = int64Words(text.targets);

  const members: PackedMember[] = [];
  let row = 0;
  let g = 0, h = 0;
  let total = 0;
  for (let i = 0; i < inputs.length; i++) {
    const inp = inputs[i];
    const { k, m } = shapes[i];
    const rowBase = row;
    let tokens = 0;
    for (let b = 0; b < k; b++) {
      const src = inp.branches[b];
      const base = (rowBase + b) * length;
      // ids are non-negative token ids: low word = id, high word stays 0 from the allocation.
      for (let p = 0; p < src.length; p++) ids32[2 * (base + p)] = src[p];
      seqLens[rowBase + b] = BigInt(src.length);
      tokens += src.length;
    }
    row += k;
    total += tokens;
    const isImage = inp.mode === "image";
    const t = isImage ? image : text;
    const t32 = isImage ? img32 : txt32;
    const idx = isImage ? g++ : h++;
    const K = t.branches, M = t.slots;
    for (let b = 0; b < K; b++) {
      const srcBranch = b < k ? b : 0; // padded branch: a copy of branch 0 with weight 0
      const tgt = inp.targets[srcBranch];
      const rowOffset = (rowBase + srcBranch) * length;
      const base = (idx * K + b) * M;
      for (let j = 0; j < m; j++) writeInt64(t32, base + j, rowOffset + tgt[j]);
      for (let j = m; j < M; j++) writeInt64(t32, base + j, rowOffset); // ignored slot: position 0 of its own row
      t.weights[idx * K + b] = b < k ? inp.weights[b] : 0;
    }
    t.uniforms.set(inp.uniforms, idx * M); // padded slots keep uniform 0
    t.temperature[idx] = inp.temperature;
    members.push({ mode: inp.mode, index: idx, rowBase, branchCount: k, slotCount: m, tokens });
  }
  return { rows, length, inputIds, seqLens, image, text, members, tokens: total };
}

function allocMode(count: number, branches: number, slots: number): ModeTensors {
  return {
    count,
    branches,
    slots,
    targets: new BigInt64Array(count * branches * slots),
    weights: new Float32Array(count * branches),
    uniforms: new Float32Array(count * slots),
    temperature: new Float32Array(count),
  };
}

function readTokens(src: EngineOutputs["imageTokens"], offset: number, n: number): Int32Array {
  const out = new Int32Array(n);
  if (src instanceof BigInt64Array) {
    const v = int64Words(src);
    for (let j = 0; j < n; j++) out[j] = v[2 * (offset + j)];
  } else if (src instanceof Int32Array) {
    out.set(src.subarray(offset, offset + n));
  } else {
    for (let j = 0; j < n; j++) out[j] = Number(src[offset + j]);
  }
  return out;
}

/** Splits a call's outputs back into one StepOutputs per packed request, in packing order. */
export function unpackStep(call: PackedCall, out: EngineOutputs): StepOutputs[] {
  const needImg = call.image.count * call.image.slots;
  const needTxt = call.text.count * call.text.slots;
  if (out.imageTokens.length < needImg || out.imageConfidence.length < needImg) {
    throw new PackError(`engine returned ${out.imageTokens.length} image tokens, expected ${needImg}`);
  }
  if (out.textTokens.length < needTxt || out.textProbability.length < needTxt) {
    throw new PackError(`engine returned ${out.textTokens.length} text tokens, expected ${needTxt}`);
  }
  return call.members.map((mem) => {
    const isImage = mem.mode === "image";
    const slots = isImage ? call.image.slots : call.text.slots;
    const offset = mem.index * slots;
    const tokens = readTokens(isImage ? out.imageTokens : out.textTokens, offset, mem.slotCount);
    const conf = (isImage ? out.imageConfidence : out.textProbability).slice(offset, offset + mem.slotCount);
    return { tokens, confidence: conf };
  });
}
