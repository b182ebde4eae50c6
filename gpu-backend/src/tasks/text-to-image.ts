// Text-to-image (docs/model.md §3): a WxH output from the prompt alone; branches [cond, uncond] with
// guidance (1+s)c - s·u.
import { invalidArgument } from "../errors";
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

/** Reference default output side. */
const DEFAULT_SIDE = 1024;

export const textToImage: ImageFamily = {
  sizeField: "width",
  needsMask: false,
  cacheable: true,
  defaultGuidance: 4.0,
  editType: () => "",
  promptRequired: () => true,
  imageCount: () => 0,
  requestedSize(req, limits) {
    const width = req.width || DEFAULT_SIDE;
    const height = req.height || DEFAULT_SIDE;
    for (const [field, v] of [["width", width], ["height", height]] as const) {
      if (v % 16 !== 0) throw invalidArgument(field, `${v} is not a multiple of 16`);
      if (v < 16 || v > limits.maxSide) throw invalidArgument(field, `must be between 16 and ${limits.maxSide}`);
    }
    if (width * height > limits.maxPixels) throw invalidArgument("width", `${width}x${height} exceeds the ${limits.maxPixels}-pixel budget`);
    return { width, height };
  },
  prompts: (p) => textToImagePrompts(p.prompt),
  inputPrep: "floor16",
  inputs: async (_decoded, _req, p) => ({ images: [], grid: gridForPixels(p.height, p.width) }),
  inputTokens: () => 0,
  init: (spec) => textToImageState(spec),
};
