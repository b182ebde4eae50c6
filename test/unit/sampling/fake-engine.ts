// A pure TypeScript stand-in for the GPU engine's per-step contract, for tests only: guided logits as the
// weighted sum of per-branch logits at aligned target slots, then inverse-CDF sampling from
// softmax(combined / temperature) with the uniforms we were given, confidence = softmax(combined)[token].
// Logits come from a deterministic function of (branch row, position), so a whole sampler run can be
// checked without a server, and any layout mistake (wrong target offset, wrong row) changes the result.

import { CODEBOOK_SIZE } from "../../../gpu-backend/src/model/tokens";
import type { StepInputs, StepOutputs } from "../../../gpu-backend/src/engine/step";

/**
 * Logits for one target: `row` is the branch's full token row, `pos` the target position in it. Return
 * `vocab` values (image mode: 8192 codebook logits; text mode: logits over `textVocab` ids).
 */
export type LogitsFn = (row: Int32Array, pos: number, branch: number) => Float64Array;

export interface FakeEngineOptions {
  logits: LogitsFn;
  /** Text mode only: the ids the logits refer to (all other ids have logit -inf). */
  textVocab?: Int32Array;
}

/** One engine call for one request. */
export function runFakeEngine(inp: StepInputs, opts: FakeEngineOptions): StepOutputs {
  const k = inp.branches.length;
  if (inp.targets.length !== k || inp.weights.length !== k) throw new Error("branch/target/weight count mismatch");
  const m = inp.uniforms.length;
  for (const t of inp.targets) if (t.length !== m) throw new Error("targets not aligned with uniforms");
  const vocabIds = inp.mode === "image" ? null : opts.textVocab;
  if (inp.mode === "text" && !vocabIds) throw new Error("text mode needs textVocab");
  const v = inp.mode === "image" ? CODEBOOK_SIZE : vocabIds!.length;
  const tokens = new Int32Array(m);
  const confidence = new Float32Array(m);
  const combined = new Float64Array(v);
  for (let s = 0; s < m; s++) {
    combined.fill(0);
    for (let b = 0; b < k; b++) {
      const pos = inp.targets[b][s];
      if (pos < 0 || pos >= inp.branches[b].length) throw new Error(`target ${pos} outside branch ${b} of length ${inp.branches[b].length}`);
      const l = opts.logits(inp.branches[b], pos, b);
      if (l.length !== v) throw new Error(`logits function returned ${l.length} values, expected ${v}`);
      const w = inp.weights[b];
      for (let i = 0; i < v; i++) combined[i] += w * l[i];
    }
    let max = -Infinity, argmax = 0;
    for (let i = 0; i < v; i++) if (combined[i] > max) { max = combined[i]; argmax = i; }
    let z = 0;
    for (let i = 0; i < v; i++) z += Math.exp(combined[i] - max);
    let pick = argmax;
    if (inp.temperature > 0) {
      const t = inp.temperature;
      let zt = 0;
      for (let i = 0; i < v; i++) zt += Math.exp((combined[i] - max) / t);
      const target = inp.uniforms[s] * zt;
      let acc = 0;
      pick = v - 1;
      for (let i = 0; i < v; i++) {
        acc += Math.exp((combined[i] - max) / t);
        if (acc > target) { pick = i; break; }
      }
    }
    tokens[s] = vocabIds ? vocabIds[pick] : pick;
    confidence[s] = Math.exp(combined[pick] - max) / z;
  }
  return { tokens, confidence };
}

/** Cheap deterministic hash of a few integers to [0, 1). */
export function hash01(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x & 0xffff), 0x01000193);
    h = Math.imul(h ^ (x >>> 16), 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}
