// Text-to-image (docs/model.md §3): a WxH output from the prompt alone; branches [cond, uncond] with
// guidance (1+s)c - s·u.
import { gridForPixels } from "../model/layout";
import { textToImagePrompts } from "../model/prompts";
import type { ImageDenoisingState } from "../sampling/image-denoising";
import { initTextToImage } from "../sampling/text-to-image";
import type { ImageFamily, ImageSpec } from "./image-family";

/** The text-to-image sampler's first state; painting passes the known cells. */
export function textToImageState(spec: ImageSpec, known?: { codes: Int32Array; regenerate: Uint8Array }): ImageDenoisingState {
  return initTextToImage({
    prompt: spec.prompt,
    uncondPrompt: spec.uncondPrompt,
    grid: spec.grid,
    known,
    cfgScale: spec.params.guidanceScale,
    timesteps: spec.params.steps,
    temperature: spec.params.temperature,
    seed: spec.params.seed,
  });
}

export const textToImage: ImageFamily = {
  sizeField: "width",
  prompts: (p) => textToImagePrompts(p.prompt),
  inputs: async (_decoded, _req, p) => ({ images: [], grid: gridForPixels(p.height, p.width) }),
  inputTokens: () => 0,
  init: (spec) => textToImageState(spec),
};
