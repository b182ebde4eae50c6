// The masked-image denoising loop shared by text-to-image, inpainting/outpainting and image-to-image
// (docs/model.md §3.4, §4.1): per step, sample a code for every masked cell from the guided logits, commit
// them all, then re-mask the keep_n lowest-scoring ones. The tasks differ only in their rows: branch 0 is
// the conditional row x itself; every other branch is `prefix + x[codeStart-2:]`, rebuilt from the current
// x each step, so its target slots are the cond positions shifted by len(prefix) - (codeStart - 2).
//
// State is immutable: a step returns a new state and never touches the old one, so the caller can retry or
// discard a step freely. Like a diffusers scheduler's step(), which returns prev_sample and
// pred_original_sample, a step returns the next state and its prediction of the finished image.

import { InvalidArgument } from "../model/errors";
import { extractImageCodes, imageCellPositions, uncondOffset, uncondRow, type Grid } from "../model/layout";
import { CODEBOOK_SIZE, IMAGE_OFFSET, MASK } from "../model/tokens";
import { keepN, maskSchedule } from "./mask-schedule";
import { remaskScores, selectRemask } from "./remask";
import { uniforms, type Seed } from "./rng";
import type { StepInputs, StepOutputs } from "../engine/step";

export interface ImageDenoisingParams {
  /** The conditional row at the start: answer region cells are MASK (to generate) or image ids (known). */
  cond: Int32Array;
  codeStart: number;
  grid: Grid;
  /** Prefixes of branches 1..K-1 (branch 0 is cond), in the same order as weights[1..]. */
  branchPrefixes: Int32Array[];
  weights: Float32Array;
  timesteps: number;
  temperature: number;
  seed: Seed;
}

export interface ImageDenoisingState {
  readonly x: Int32Array;
  readonly codeStart: number;
  readonly grid: Grid;
  readonly branchPrefixes: readonly Int32Array[];
  readonly weights: Float32Array;
  readonly timesteps: number;
  readonly temperature: number;
  readonly seed: Seed;
  /** Cells masked at the start (N of the schedule). */
  readonly initialMasked: number;
  /** Steps taken so far. */
  readonly step: number;
  /** Steps the whole run takes (known in advance: the schedule fixes the count after every step). */
  readonly totalSteps: number;
  /** Row positions currently MASK, ascending: this step's target slots. */
  readonly masked: Int32Array;
}

export function checkSamplingParams(timesteps: number, temperature: number): void {
  if (!Number.isInteger(timesteps) || timesteps < 1) throw new InvalidArgument("steps", `must be an integer >= 1, got ${timesteps}`);
  if (!Number.isFinite(temperature) || temperature < 0) throw new InvalidArgument("temperature", `must be a finite number >= 0, got ${temperature}`);
}

export function initImageDenoising(p: ImageDenoisingParams): ImageDenoisingState {
  checkSamplingParams(p.timesteps, p.temperature);
  if (p.weights.length !== p.branchPrefixes.length + 1) {
    throw new RangeError(`${p.weights.length} weights for ${p.branchPrefixes.length + 1} branches`);
  }
  const cells = imageCellPositions(p.codeStart, p.grid);
  const masked: number[] = [];
  for (const pos of cells) {
    const t = p.cond[pos];
    if (t === MASK) masked.push(pos);
    else if (t < IMAGE_OFFSET || t >= IMAGE_OFFSET + CODEBOOK_SIZE) throw new RangeError(`cell at ${pos} holds ${t}: neither MASK nor an image code`);
  }
  // Only image cells may be masked: a MASK elsewhere would never be filled and the run would not end.
  let total = 0;
  for (const t of p.cond) if (t === MASK) total++;
  if (total !== masked.length) throw new RangeError(`${total - masked.length} MASK tokens outside the image cells`);
  return {
    x: p.cond.slice(),
    codeStart: p.codeStart,
    grid: { ...p.grid },
    branchPrefixes: p.branchPrefixes.map((b) => b.slice()),
    weights: p.weights.slice(),
    timesteps: p.timesteps,
    temperature: p.temperature,
    seed: p.seed,
    initialMasked: masked.length,
    step: 0,
    totalSteps: maskSchedule(masked.length, p.timesteps).length,
    masked: Int32Array.from(masked),
  };
}

export function imageDenoisingDone(s: ImageDenoisingState): boolean {
  return s.masked.length === 0 || s.step >= s.timesteps;
}

export function imageDenoisingInputs(s: ImageDenoisingState): StepInputs {
  if (imageDenoisingDone(s)) throw new Error("engineInputs called on a finished image run");
  const branches: Int32Array[] = [s.x.slice()];
  const targets: Int32Array[] = [s.masked.slice()];
  for (const prefix of s.branchPrefixes) {
    branches.push(uncondRow(prefix, s.x, s.codeStart));
    const off = uncondOffset(prefix.length, s.codeStart);
    const t = new Int32Array(s.masked.length);
    for (let m = 0; m < t.length; m++) t[m] = s.masked[m] + off;
    targets.push(t);
  }
  return {
    mode: "image",
    branches,
    targets,
    weights: s.weights.slice(),
    uniforms: uniforms(s.seed, "sample", s.step, s.masked.length),
    temperature: s.temperature,
  };
}

export function checkOutputs(out: StepOutputs, m: number, maxToken: number): void {
  if (out.tokens.length !== m || out.confidence.length !== m) {
    throw new Error(`engine returned ${out.tokens.length} tokens / ${out.confidence.length} confidences for ${m} target slots`);
  }
  for (let i = 0; i < m; i++) {
    const t = out.tokens[i];
    if (t < 0 || t >= maxToken) throw new Error(`engine returned token ${t} at slot ${i}, outside 0..${maxToken - 1}`);
  }
}

/** One step's result: the next state and the prediction it was drawn from. */
export interface ImageDenoisingStep {
  state: ImageDenoisingState;
  /**
   * Codebook indices (h*w) of this step's prediction of the finished image: every cell that was masked holds
   * the code sampled for it this step, before re-masking (pred_original_sample). What previews show.
   */
  predictedCodes: Int32Array;
}

export function advanceImageDenoising(s: ImageDenoisingState, out: StepOutputs): ImageDenoisingStep {
  if (imageDenoisingDone(s)) throw new Error("advance called on a finished image run");
  const m = s.masked.length;
  checkOutputs(out, m, CODEBOOK_SIZE);
  const x = s.x.slice();
  for (let i = 0; i < m; i++) x[s.masked[i]] = out.tokens[i] + IMAGE_OFFSET;
  const keep = keepN(s.step, s.initialMasked, s.timesteps);
  const predictedCodes = extractImageCodes(x, s.codeStart, s.grid);
  const scores = remaskScores(out.confidence, s.temperature, uniforms(s.seed, "remask", s.step, m));
  const slots = selectRemask(scores, s.masked, keep);
  const masked = new Int32Array(slots.length);
  for (let j = 0; j < slots.length; j++) {
    const pos = s.masked[slots[j]];
    x[pos] = MASK;
    masked[j] = pos;
  }
  return { state: { ...s, x, step: s.step + 1, masked }, predictedCodes };
}

/** Codebook indices (h*w, row-major) of a finished run. */
export function imageDenoisingCodes(s: ImageDenoisingState): Int32Array {
  if (s.masked.length !== 0) throw new Error(`image run not finished: ${s.masked.length} cells still masked`);
  return extractImageCodes(s.x, s.codeStart, s.grid);
}
