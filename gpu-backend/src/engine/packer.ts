// The packer: several requests' per-step engine inputs become ONE transformer call of the engine contract
// (contract.ts), and the call's outputs are split back per request.
//
//   rows      every branch of every request is one row of input_ids [R, L], right-padded with 0 to the
//             bucket length L; seq_lens carries the true length (keys past it are masked in the engine).
//   targets   flat `row * L + pos` indices. Every sampler's branches share the answer region after prompts
//             of different lengths, so branch k's targets are branch 0's shifted by a constant: then the
//             call sends ONE list per request, [G, 1, M] (image) / [H, 1, N] (text), and per branch the
//             offset `(row_k - row_0) * L + shift_k`, [G, K] / [H, J]. A call holding a request whose
//             branches are not shifts of each other sends the general form instead: a list per branch,
//             [G, K, M], with offsets 0. K (J) is the largest branch count and M (N) the largest target
//             count of the call's requests.
//   padding   a request with fewer branches gets weight-0 branches that point at its own first branch (so
//             the padded logits are finite and contribute exactly 0); a request with fewer targets gets
//             ignored slots that repeat its first target (position 0 of its own rows when it has none),
//             with uniform 0, and are dropped when unpacking.
//
// Pure and allocation-light; every integer is int32 (contract.ts), the tensors are written in place.
import { int64Words } from "../lib/numeric";
import type { StepInputs, StepMode, StepOutputs } from "./step";

export interface ModeTensors {
  /** Number of requests of this mode (G or H). */
  count: number;
  /** Padded branch count (K or J). */
  branches: number;
  /** Padded target count (M or N). */
  slots: number;
  /** Target lists per request: 1 (one list, shifted per branch by `offsets`) or `branches` (general form). */
  lists: number;
  targets: Int32Array; // [count, lists, slots]
  offsets: Int32Array; // [count, branches]
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
  inputIds: Int32Array; // [R, L]
  seqLens: Int32Array; // [R]
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

interface InputShape {
  k: number;
  m: number;
  longest: number;
  /** Per branch, the constant shift of its targets against branch 0's; undefined when there is none. */
  shifts?: Int32Array;
}

function checkInput(input: StepInputs, which: number): InputShape {
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
  return { k, m, longest, shifts: targetShifts(input.targets, m) };
}

/** shifts[k] with targets[k][j] = targets[0][j] + shifts[k] for every slot j, or undefined. */
function targetShifts(targets: readonly Int32Array[], m: number): Int32Array | undefined {
  const shifts = new Int32Array(targets.length);
  const first = targets[0];
  for (let b = 1; b < targets.length; b++) {
    const t = targets[b];
    const d = m > 0 ? t[0] - first[0] : 0;
    for (let j = 1; j < m; j++) if (t[j] - first[j] !== d) return undefined;
    shifts[b] = d;
  }
  return shifts;
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
  const dims = { image: { count: 0, k: 0, m: 0, shifted: true }, text: { count: 0, k: 0, m: 0, shifted: true } };
  for (let i = 0; i < inputs.length; i++) {
    const s = shapes[i];
    if (s.longest > length) throw new PackError(`request ${i}: row of ${s.longest} tokens exceeds L=${length}`);
    rows += s.k;
    const d = dims[inputs[i].mode];
    d.count++;
    d.k = Math.max(d.k, s.k);
    d.m = Math.max(d.m, s.m);
    d.shifted &&= s.shifts !== undefined;
  }
  // An empty mode still has well-formed shapes: [0, 1, 0] targets, [0, 1] offsets and weights, [0, 0] uniforms.
  const image = allocMode(dims.image.count, Math.max(1, dims.image.k), dims.image.m, dims.image.shifted);
  const text = allocMode(dims.text.count, Math.max(1, dims.text.k), dims.text.m, dims.text.shifted);

  const inputIds = new Int32Array(rows * length);
  const seqLens = new Int32Array(rows);
  const members: PackedMember[] = [];
  let row = 0;
  let g = 0, h = 0;
  let total = 0;
  for (let i = 0; i < inputs.length; i++) {
    const inp = inputs[i];
    const { k, m, shifts } = shapes[i];
    const rowBase = row;
    let tokens = 0;
    for (let b = 0; b < k; b++) {
      const src = inp.branches[b];
      inputIds.set(src, (rowBase + b) * length);
      seqLens[rowBase + b] = src.length;
      tokens += src.length;
    }
    row += k;
    total += tokens;
    const isImage = inp.mode === "image";
    const t = isImage ? image : text;
    const idx = isImage ? g++ : h++;
    const K = t.branches, M = t.slots;
    for (let b = 0; b < K; b++) t.weights[idx * K + b] = b < k ? inp.weights[b] : 0; // padded branch: weight 0
    if (t.lists === 1) {
      // One list in branch 0's row; branch b adds its row and shift. A padded branch is branch 0 again.
      const first = inp.targets[0];
      const base = idx * M;
      const rowOffset = rowBase * length;
      for (let j = 0; j < m; j++) t.targets[base + j] = rowOffset + first[j];
      t.targets.fill(rowOffset + (m > 0 ? first[0] : 0), base + m, base + M); // ignored slots
      for (let b = 1; b < k; b++) t.offsets[idx * K + b] = b * length + shifts![b];
    } else {
      for (let b = 0; b < K; b++) {
        const srcBranch = b < k ? b : 0; // padded branch: a copy of branch 0 with weight 0
        const tgt = inp.targets[srcBranch];
        const rowOffset = (rowBase + srcBranch) * length;
        const base = (idx * K + b) * M;
        for (let j = 0; j < m; j++) t.targets[base + j] = rowOffset + tgt[j];
        t.targets.fill(rowOffset, base + m, base + M); // ignored slot: position 0 of its own row
      }
    }
    t.uniforms.set(inp.uniforms, idx * M); // padded slots keep uniform 0
    t.temperature[idx] = inp.temperature;
    members.push({ mode: inp.mode, index: idx, rowBase, branchCount: k, slotCount: m, tokens });
  }
  return { rows, length, inputIds, seqLens, image, text, members, tokens: total };
}

function allocMode(count: number, branches: number, slots: number, shifted: boolean): ModeTensors {
  const lists = shifted ? 1 : branches;
  return {
    count,
    branches,
    slots,
    lists,
    targets: new Int32Array(count * lists * slots),
    offsets: new Int32Array(count * branches),
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
