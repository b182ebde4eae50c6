// A running image request (every image family): the denoising sampler's state, advanced one step at a time
// by the step batcher, and the latest prediction for previews.
import { extractImageCodes, type Grid } from "../model/layout";
import { IMAGE_OFFSET, MASK } from "../model/tokens";
import type { StepInputs, StepOutputs } from "../engine/step";
import {
  advanceImageDenoising,
  imageDenoisingCodes,
  imageDenoisingDone,
  imageDenoisingInputs,
  type ImageDenoisingState,
} from "../sampling/image-denoising";
import type { ImageTask } from "./task";

export class DenoisingTask implements ImageTask {
  private predicted?: Int32Array;
  constructor(
    private state: ImageDenoisingState,
    readonly promptTokens: number,
  ) {}
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
    return imageDenoisingInputs(this.state);
  }
  advance(out: StepOutputs): void {
    const step = advanceImageDenoising(this.state, out);
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
