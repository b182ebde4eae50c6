// Inpainting and outpainting (docs/model.md §4.3): the input is LANCZOS-resized to multiples of 16 (no
// crop), an arbitrary mask becomes a grid of cells to regenerate (area average > 0.5), and the text-to-image
// prompts and guidance run with the known cells fixed; only masked cells count in the schedule. Unless the
// request asks for the raw decode, the result is blended into the caller's image at its own size
// (model/paint-blend.ts), so everything outside the mask comes back unchanged.
import { gridForPixels } from "../model/layout";
import { countRegenerate } from "../model/mask-grid";
import { textToImagePrompts } from "../model/prompts";
import { invalidArgument } from "../errors";
import type { ImageFamily } from "./image-family";
import { textToImageState } from "./text-to-image";

export const painting: ImageFamily = {
  sizeField: "images[0]",
  needsMask: true,
  cacheable: true,
  defaultGuidance: 4.0,
  editType: () => "",
  promptRequired: () => true,
  imageCount: () => 1,
  requestedSize: () => ({ width: 0, height: 0 }),
  prompts: (p) => textToImagePrompts(p.prompt),
  inputPrep: "floor16",
  async inputs(prepared, req, p, limits, work) {
    const { source, image: resized, original } = prepared[0];
    const grid = gridForPixels(resized.height, resized.width);
    const { mask, cells } = await work.mask(req.mask, { field: "mask", width: source.width, height: source.height, maxPixels: limits.maxInputPixels, grid });
    if (countRegenerate(cells) === 0) throw invalidArgument("mask", "selects no 16x16 cell to regenerate");
    const blend = !p.rawDecode && original ? { original, mask } : undefined;
    return { images: [resized], grid, regenerate: cells, blend };
  },
  // The source image is not in the row: its codes fill the answer region's known cells.
  inputTokens: () => 0,
  init: (spec, encoded) => textToImageState(spec, spec.regenerate && { codes: encoded[0].codes, regenerate: spec.regenerate }),
};
