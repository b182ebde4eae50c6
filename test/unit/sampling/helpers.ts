// Shared test fixtures for the sampler tests: small prompts, deterministic context-dependent logits and a
// driver that runs a sampler to completion against the fake engine while recording every step.

import { CODEBOOK_SIZE } from "../../../gpu-backend/src/model/tokens";
import type { StepFunctions, StepInputs, StepOutputs } from "../../../gpu-backend/src/sampling/step-types";
import { hash01, runFakeEngine, type FakeEngineOptions } from "./fake-engine";

export const P = [126080, 126340, 300, 301, 302, 126341, 126342, 400, 401, 126343];
export const PU = [126080, 126340, 300, 301, 302, 126341, 126342, 126351, 126343];

/**
 * Image logits that depend on the branch row around the target (neighbours, row length), so sending the
 * wrong row or a misaligned target changes the samples.
 */
export function contextLogits(row: Int32Array, pos: number): Float64Array {
  const l = new Float64Array(CODEBOOK_SIZE);
  // A digest of the whole row makes every token (prompt, input images, other cells) matter.
  let digest = 0;
  for (let i = 0; i < row.length; i++) digest = (Math.imul(digest, 31) + row[i] * (i + 1)) | 0;
  const a = row[pos - 1] ^ digest, b = row[pos + 1], n = row.length;
  for (let j = 0; j < 6; j++) {
    const code = Math.floor(hash01(a, b, n, pos, j) * CODEBOOK_SIZE);
    l[code] += 2 + 4 * hash01(b, a, j, 99);
  }
  return l;
}

export interface Trace<S> {
  state: S;
  steps: StepInputs[];
  outputs: StepOutputs[];
  states: S[];
}

export function runToEnd<P, S>(fns: StepFunctions<P, S>, params: P, engine: FakeEngineOptions = { logits: contextLogits }): Trace<S> {
  let state = fns.init(params);
  const steps: StepInputs[] = [];
  const outputs: StepOutputs[] = [];
  const states: S[] = [state];
  let guard = 0;
  while (!fns.isDone(state)) {
    if (guard++ > 10_000) throw new Error("sampler did not finish");
    const inp = fns.engineInputs(state);
    const out = runFakeEngine(inp, engine);
    steps.push(inp);
    outputs.push(out);
    state = fns.advance(state, out);
    states.push(state);
  }
  return { state, steps, outputs, states };
}
