// Image-to-image sampling: edit, control, subject-driven, dense prediction, multi-view (one input image) and
// style transfer (content + style image), docs/model.md §4.1-4.2. Three branches per step:
//   cond         = P[:-1] + IMGs + P[-1:] + answer          weight 1 + st + si
//   uncond_text  = Pu[:-1] + IMGs + Pu[-1:] + answer        weight -st   (dropped when st = 0)
//   uncond_image = P + answer                               weight -si   (dropped when si = 0)
// The output grid defaults to the last image's grid (the input for single-image tasks, the style image for
// style transfer), as in the reference.

import { imageToImageLayout, type Grid, type ImageCodes } from "../model/layout";
import { imageToImageGuidance } from "./guidance";
import { initImageDenoising, type ImageDenoisingState } from "./image-denoising";
import type { Seed } from "./rng";

export interface ImageToImageParams {
  prompt: ArrayLike<number>;
  uncondPrompt: ArrayLike<number>;
  /** [input] or, for style transfer, [content, style]. */
  images: readonly ImageCodes[];
  /** Output grid; default: the last image's grid. */
  grid?: Grid;
  /** Text guidance, reference default 2.5. */
  cfgText: number;
  /** Image guidance, reference default 4.0. */
  cfgImage: number;
  timesteps: number;
  temperature: number;
  seed: Seed;
}

export type ImageToImageState = ImageDenoisingState;

export function initImageToImage(p: ImageToImageParams): ImageToImageState {
  if (p.images.length < 1) throw new RangeError("image-to-image needs at least one image");
  const last = p.images[p.images.length - 1];
  const grid = p.grid ?? { h: last.h, w: last.w };
  const layout = imageToImageLayout(p.prompt, p.uncondPrompt, p.images, grid);
  const g = imageToImageGuidance(p.cfgText, p.cfgImage);
  const prefixes = g.roles.slice(1).map((r) => (r === "uncondText" ? layout.uncondTextPrefix : layout.uncondImagePrefix));
  return initImageDenoising({
    cond: layout.cond,
    codeStart: layout.codeStart,
    grid: layout.grid,
    branchPrefixes: prefixes,
    weights: g.weights,
    timesteps: p.timesteps,
    temperature: p.temperature,
    seed: p.seed,
  });
}
