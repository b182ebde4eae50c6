// A running image request (every image family): the denoising sampler's state, advanced one step at a time
// by the step batcher, and the latest prediction for previews. With the ML-Cache on, the request runs as one
// engine sequence and each step says which positions the engine recomputes.
import { extractImageCodes, type Grid } from "../model/layout";
import { IMAGE_OFFSET, MASK } from "../model/tokens";
import type { StepInputs, StepOutputs } from "../engine/step";
import { advanceMlCache, choosesRecompute, recomputeAt, type MlCacheRun } from "../sampling/ml-cache";
import {
  advanceImageDenoising,
  imageDenoisingCodes,
  imageDenoisingDone,
  imageDenoisingInputs,
  type ImageDenoisingState,
} from "../sampling/image-denoising";
import type { ImageTask } from "./task";

/** A cached run: the engine sequence and the cache's bookkeeping. */
export interface CachedRun {
  sequenceId: bigint;
  run: MlCacheRun;
}

export class DenoisingTask implements ImageTask {
  private predicted?: Int32Array;
  /** Steps that recomputed only part of the sequence. */
  cachedSteps = 0;
  constructor(
    private state: ImageDenoisingState,
    readonly promptTokens: number,
    private cache?: CachedRun,
  ) {}
  get cached(): boolean {
    return this.cache !== undefined;
  }
  get totalSteps(): number {
    return this.state.totalSteps;
  }
  get maskedRemaining(): number {
    return this.state.masked.length;
  }
  get outputTokens(): number {
    return this.state.initialMasked;
  }
  get grid(): Grid {
    return this.state.grid;
  }
  engineInputs(): StepInputs {
    const inputs = imageDenoisingInputs(this.state);
    if (!this.cache) return inputs;
    const s = this.state.step;
    const recompute = recomputeAt(this.cache.run, s);
    return { ...inputs, cache: { sequenceId: this.cache.sequenceId, start: s === 0, end: s === this.state.totalSteps - 1, recompute, selectForRatio: choosesRecompute(this.cache.run, s) ? this.cache.run.cacheRatio : undefined } };
  }
  advance(out: StepOutputs): void {
    const s = this.state.step;
    const step = advanceImageDenoising(this.state, out);
    if (this.cache) {
      if (!this.cache.run.refresh[s]) this.cachedSteps++;
      this.cache = { ...this.cache, run: advanceMlCache(this.cache.run, s, out.recomputeSelection) };
    }
    this.state = step.state;
    this.predicted = step.predictedCodes;
  }
  isDone(): boolean {
    return imageDenoisingDone(this.state);
  }
  /** Final codes (h*w). */
  codes(): Int32Array {
    return imageDenoisingCodes(this.state);
  }
  /** Codes of the latest step's prediction; before the first step, known cells and code 0 elsewhere. */
  predictedCodes(): Int32Array {
    if (this.predicted) return this.predicted;
    const x = this.state.x.map((t) => (t === MASK ? IMAGE_OFFSET : t));
    return extractImageCodes(x, this.state.codeStart, this.state.grid);
  }
}
