// Text-to-image sampling, and inpainting/outpainting, which the reference runs through the same generator
// (docs/model.md §3, §4.3): branches [cond, uncond = Pu + x[codeStart-2:]] with weights [1+s, -s].
// For painting, the known cells start as their codes and never change; the schedule counts masked cells only.

import { textToImageLayout, type Grid } from "../model/layout";
import { textToImageGuidance } from "./guidance";
import { initImageDenoising, type ImageDenoisingState } from "./image-denoising";
import type { Seed } from "./rng";

export interface TextToImageParams {
  /** Tokenized `chatPrompt(T2I system, prompt)` (P). */
  prompt: ArrayLike<number>;
  /** Tokenized `uncondPrompt(T2I system)` (Pu). */
  uncondPrompt: ArrayLike<number>;
  grid: Grid;
  /** Inpainting/outpainting: the source image's codes (h*w) and which cells to regenerate (1). */
  known?: { codes: Int32Array; regenerate: Uint8Array };
  /** Reference default 4.0. */
  cfgScale: number;
  /** Reference default 64. */
  timesteps: number;
  /** Reference default 1.0; also scales the remask noise. */
  temperature: number;
  seed: Seed;
}

export type TextToImageState = ImageDenoisingState;

export function initTextToImage(p: TextToImageParams): TextToImageState {
  const layout = textToImageLayout(p.prompt, p.uncondPrompt, p.grid, p.known);
  const g = textToImageGuidance(p.cfgScale);
  return initImageDenoising({
    cond: layout.cond,
    codeStart: layout.codeStart,
    grid: layout.grid,
    branchPrefixes: g.roles.length > 1 ? [layout.uncondPrefix] : [],
    weights: g.weights,
    timesteps: p.timesteps,
    temperature: p.temperature,
    seed: p.seed,
  });
}
