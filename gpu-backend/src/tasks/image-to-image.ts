// Image-to-image (docs/model.md §4.1-4.2): edit, subject-driven, control, dense prediction and multi-view
// take one input image, style transfer a content and a style image. Each input is cropped with the 512
// crop list; the output takes the last image's crop size; dual guidance over text and image.
import { prepareImageToImageInput } from "../model/image-codec";
import { gridForPixels, imageBlockLength } from "../model/layout";
import { imageToImagePrompts } from "../model/prompts";
import { initImageToImage } from "../sampling/image-to-image";
import type { ImageFamily } from "./image-family";

export const imageToImage: ImageFamily = {
  sizeField: "images[0]",
  prompts: (p) => imageToImagePrompts(p.editType, p.prompt),
  async inputs(decoded) {
    const images = decoded.map((img) => prepareImageToImageInput(img));
    const last = images[images.length - 1];
    return { images, grid: gridForPixels(last.height, last.width) };
  },
  inputTokens: (images) => images.reduce((n, img) => n + imageBlockLength(img.height / 16, img.width / 16), 0),
  init: (spec, encoded) =>
    initImageToImage({
      prompt: spec.prompt,
      uncondPrompt: spec.uncondPrompt,
      images: encoded,
      grid: spec.grid,
      cfgText: spec.params.guidanceScale,
      cfgImage: spec.params.imageGuidanceScale,
      timesteps: spec.params.steps,
      temperature: spec.params.temperature,
      seed: spec.params.seed,
    }),
};
