// Inpainting and outpainting (docs/model.md §4.3): the input is LANCZOS-resized to multiples of 16 (no
// crop), an arbitrary mask becomes a grid of cells to regenerate (area average > 0.5), and the text-to-image
// prompts and guidance run with the known cells fixed; only masked cells count in the schedule.
import { resizeToMultipleOf16 } from "../model/image-codec";
import { gridForPixels } from "../model/layout";
import { countRegenerate, decodeMask, maskToGrid } from "../model/mask-grid";
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
  async inputs(decoded, req, _p, limits) {
    const src = decoded[0];
    const resized = resizeToMultipleOf16(src, "images[0]");
    const grid = gridForPixels(resized.height, resized.width);
    const mask = await decodeMask(req.mask, { field: "mask", width: src.width, height: src.height, maxPixels: limits.maxInputPixels });
    const regenerate = maskToGrid(mask, grid);
    if (countRegenerate(regenerate) === 0) throw invalidArgument("mask", "selects no 16x16 cell to regenerate");
    return { images: [resized], grid, regenerate };
  },
  // The source image is not in the row: its codes fill the answer region's known cells.
  inputTokens: () => 0,
  init: (spec, encoded) => textToImageState(spec, spec.regenerate && { codes: encoded[0].codes, regenerate: spec.regenerate }),
};
