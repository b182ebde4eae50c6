// Shared test fixtures for the sampler tests: small prompts, deterministic context-dependent logits, each
// sampler's free functions bound into one object, and a driver that runs a sampler to completion against
// the fake engine while recording every step.

import { CODEBOOK_SIZE } from "../../../gpu-backend/src/model/tokens";
import type { StepInputs, StepOutputs } from "../../../gpu-backend/src/engine/step";
import {
  advanceImageDenoising,
  imageDenoisingCodes,
  imageDenoisingDone,
  imageDenoisingInputs,
  type ImageDenoisingState,
} from "../../../gpu-backend/src/sampling/image-denoising";
import { initImageToImage, type ImageToImageParams } from "../../../gpu-backend/src/sampling/image-to-image";
import { initTextToImage, type TextToImageParams } from "../../../gpu-backend/src/sampling/text-to-image";
import {
  advanceUnderstand,
  answerTokens,
  initUnderstand,
  understandDone,
  understandInputs,
  type UnderstandParams,
  type UnderstandState,
} from "../../../gpu-backend/src/sampling/understand";
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

/** A sampler's free functions, state in, state out. */
export interface StepFunctions<P, S> {
  init(params: P): S;
  engineInputs(state: S): StepInputs;
  advance(state: S, outputs: StepOutputs): S;
  isDone(state: S): boolean;
}

type ImageSampler<P> = StepFunctions<P, ImageDenoisingState> & { imageCodes(s: ImageDenoisingState): Int32Array };

function imageSampler<P>(init: (params: P) => ImageDenoisingState): ImageSampler<P> {
  return {
    init,
    engineInputs: imageDenoisingInputs,
    advance: (s, out) => advanceImageDenoising(s, out).state,
    isDone: imageDenoisingDone,
    imageCodes: imageDenoisingCodes,
  };
}

export const textToImage = imageSampler<TextToImageParams>(initTextToImage);
export const imageToImage = imageSampler<ImageToImageParams>(initImageToImage);
export const understand: StepFunctions<UnderstandParams, UnderstandState> & { answerTokens(s: UnderstandState): Int32Array } = {
  init: initUnderstand,
  engineInputs: understandInputs,
  advance: advanceUnderstand,
  isDone: understandDone,
  answerTokens,
};

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
