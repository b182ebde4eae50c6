// What differs between the image task families (text-to-image, image-to-image, painting): their prompts,
// how input images are prepared and which output grid they give, how many row tokens the inputs take, and
// the sampler's first state. generate.ts does everything they share.
import type { GenerateRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { RgbImage } from "../model/image-codec";
import type { Grid, ImageCodes } from "../model/layout";
import type { PromptPair } from "../model/prompts";
import type { ImageDenoisingState } from "../sampling/image-denoising";
import type { Limits } from "./limits";
import type { GenerateParams } from "./params";
import type { GenerateSpec } from "./task";

/** Prepared inputs of one request: the images the VQ encoder gets and the output grid. */
export interface ImageInputs {
  /** Cropped or resized input images, planar RGB, sides multiples of 16. */
  images: RgbImage[];
  grid: Grid;
  /** Painting: 1 = regenerate, per output cell. */
  regenerate?: Uint8Array;
}

/** A validated image request, everything its family needs to build the sampler. */
export interface ImageSpec extends GenerateSpec, ImageInputs {
  family: ImageFamily;
  params: GenerateParams;
  prompt: number[];
  uncondPrompt: number[];
}

export interface ImageFamily {
  /** The request field an oversized output is blamed on. */
  readonly sizeField: string;
  prompts(p: GenerateParams): PromptPair;
  /** Prepares the decoded input images exactly as the reference does and picks the output grid. */
  inputs(decoded: RgbImage[], req: GenerateRequest, p: GenerateParams, limits: Limits): Promise<ImageInputs>;
  /** Tokens the conditional row spends on the input images (besides prompt and answer region). */
  inputTokens(images: readonly RgbImage[]): number;
  /** The sampler's first state, from the spec and the VQ codes of its input images. */
  init(spec: ImageSpec, encoded: ImageCodes[]): ImageDenoisingState;
}
