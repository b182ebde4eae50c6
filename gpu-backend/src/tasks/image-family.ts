// What differs between the image task families (text-to-image, image-to-image, painting): their request
// fields (edit type, output size, input images, mask, guidance default), their prompts, how input images are
// prepared and which output grid they give, how many row tokens the inputs take, and the sampler's first
// state. params.ts and generate.ts do everything they share.
import type { GenerateRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { ImageWork } from "../image-work/image-work";
import type { InputPrep, PreparedImage } from "../image-work/jobs";
import type { RgbImage } from "../model/image-codec";
import type { Grid, ImageCodes } from "../model/layout";
import type { PixelMask } from "../model/mask-grid";
import type { PromptPair } from "../model/prompts";
import type { ImageDenoisingState } from "../sampling/image-denoising";
import type { MlCacheParams } from "../sampling/ml-cache";
import type { Limits } from "./limits";
import type { GenerateSpec } from "./task";

export type TaskKind = "t2i" | "edit" | "subject" | "control" | "dense" | "style" | "multiview" | "inpaint" | "outpaint";

export interface GenerateParams {
  kind: TaskKind;
  /** The reference's edit_type string (prompt selection), e.g. "edit_add", "canny_control", "multi_view_left". */
  editType: string;
  prompt: string;
  /** Text-to-image only; other tasks take their size from the input images. */
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  imageGuidanceScale: number;
  temperature: number;
  seed: bigint;
  /** Input images needed by the task: 0, 1 or 2. */
  imageCount: number;
  needsMask: boolean;
  format: "png" | "webp" | "jpeg";
  quality: number;
  previewEvery: number;
  /** The Max-Logit cache's parameters when the request asks for it (docs/model.md §6). */
  mlCache?: MlCacheParams;
  /** Painting: return the raw VQ decode instead of blending it into the caller's image. */
  rawDecode: boolean;
}

/** Prepared inputs of one request: the images the VQ encoder gets and the output grid. */
export interface ImageInputs {
  /** Cropped or resized input images, planar RGB, sides multiples of 16. */
  images: RgbImage[];
  grid: Grid;
  /** Painting: 1 = regenerate, per output cell. */
  regenerate?: Uint8Array;
  /** Painting with the blend: the caller's image and pixel mask, which the decode is blended into. */
  blend?: { original: RgbImage; mask: PixelMask };
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
  readonly needsMask: boolean;
  /** Whether the request may run with the ML-Cache (every image family; understanding has no cache). */
  readonly cacheable: boolean;
  /** Reference default of the text guidance scale. */
  readonly defaultGuidance: number;
  /** The reference's edit_type string for the request's (INVALID_ARGUMENT edit_type when unknown). */
  editType(kind: TaskKind, raw: string): string;
  /** Whether the reference's prompt for this kind and edit_type uses the user's prompt. */
  promptRequired(kind: TaskKind, editType: string): boolean;
  /** Input images the kind takes: 0, 1 or 2. */
  imageCount(kind: TaskKind): number;
  /** The output size the request asks for, checked; 0x0 where the inputs decide it. */
  requestedSize(req: GenerateRequest, limits: Limits): { width: number; height: number };
  prompts(p: GenerateParams): PromptPair;
  /** How each input image is prepared for the VQ encoder (image-work/jobs.ts). */
  readonly inputPrep: InputPrep;
  /** Takes the prepared input images (and reads the mask) and picks the output grid. */
  inputs(prepared: PreparedImage[], req: GenerateRequest, p: GenerateParams, limits: Limits, work: ImageWork): Promise<ImageInputs>;
  /** Tokens the conditional row spends on the input images (besides prompt and answer region). */
  inputTokens(images: readonly RgbImage[]): number;
  /** The sampler's first state, from the spec and the VQ codes of its input images. */
  init(spec: ImageSpec, encoded: ImageCodes[]): ImageDenoisingState;
}
