// Text-to-image (docs/model.md §3): a WxH output from the prompt alone; branches [cond, uncond] with
// guidance (1+s)c - s·u.
import { gridForPixels } from "../model/layout";
import { textToImagePrompts } from "../model/prompts";
import { initTextToImage } from "../sampling/text-to-image";
import type { ImageFamily } from "./image-family";

export const textToImage: ImageFamily = {
  sizeField: "width",
  prompts: (p) => textToImagePrompts(p.prompt),
  inputs: async (_decoded, _req, p) => ({ images: [], grid: gridForPixels(p.height, p.width) }),
  inputTokens: () => 0,
  init: (spec) =>
    initTextToImage({
      prompt: spec.prompt,
      uncondPrompt: spec.uncondPrompt,
      grid: spec.grid,
      cfgScale: spec.params.guidanceScale,
      timesteps: spec.params.steps,
      temperature: spec.params.temperature,
      seed: spec.params.seed,
    }),
};
