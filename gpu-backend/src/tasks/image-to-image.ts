// Image-to-image (docs/model.md §4.1-4.2): edit, subject-driven, control, dense prediction and multi-view
// take one input image, style transfer a content and a style image. Each input is cropped with the 512
// crop list; the output takes the last image's crop size; dual guidance over text and image.
import { invalidArgument } from "../errors";
import { gridForPixels, imageBlockLength } from "../model/layout";
import { imageToImagePrompts, usesUserPrompt } from "../model/prompts";
import { initImageToImage } from "../sampling/image-to-image";
import type { ImageFamily, TaskKind } from "./image-family";

const EDIT_TYPES = ["add", "remove", "replace", "background", "text_transfer"];
const CONTROL_TYPES = ["canny", "depth", "hed", "openpose"];
/** The README's dense-prediction types, run as `<x>_pred` (the reference's generic branch, the user's prompt). */
const PRED_TYPES = ["canny", "hed", "depth", "openpose"];
/** Targets of the prompt builder's dense branch, reached only by an edit_type containing "dense". */
const DENSE_TYPES = ["canny", "hed", "depth", "openpose", "normal", "sam2mask"];

/** The reference's edit_type string (which selects the prompt) from the request's, in any accepted spelling. */
function editType(kind: TaskKind, raw: string): string {
  const t = raw.trim().toLowerCase();
  switch (kind) {
    case "edit": {
      // Every edit kind gets the same prompt in the reference, so a plain edit (OpenAI's images.edit) needs none.
      if (!t) return "edit";
      const base = t.startsWith("edit_") ? t.slice(5) : t;
      if (!EDIT_TYPES.includes(base)) throw invalidArgument("edit_type", `edit needs one of ${EDIT_TYPES.map((e) => "edit_" + e).join(", ")}`);
      return `edit_${base}`;
    }
    case "control": {
      const base = t.endsWith("_control") ? t.slice(0, -8) : t;
      if (!CONTROL_TYPES.includes(base)) throw invalidArgument("edit_type", `control needs one of ${CONTROL_TYPES.join(", ")}`);
      return `${base}_control`;
    }
    case "dense": {
      // The reference is run as its README shows (`--edit_type canny_pred`): "*_pred" misses the prompt
      // builder's dense branch and takes the generic one with the user's prompt (docs/model.md §4.4). Only an
      // explicit "<x>_dense" reaches the dense branch and its fixed prompt.
      if (t.endsWith("_dense")) {
        const base = t.slice(0, -6);
        if (!DENSE_TYPES.includes(base)) throw invalidArgument("edit_type", `dense prediction needs one of ${DENSE_TYPES.map((d) => d + "_dense").join(", ")}`);
        return t;
      }
      const base = t.endsWith("_pred") ? t.slice(0, -5) : t;
      if (!PRED_TYPES.includes(base)) {
        throw invalidArgument("edit_type", `dense prediction needs one of ${PRED_TYPES.map((d) => d + "_pred").join(", ")} (or ${DENSE_TYPES.map((d) => d + "_dense").join(", ")})`);
      }
      return `${base}_pred`;
    }
    case "multiview": {
      const view = t.startsWith("multi_view_") ? t.slice(11) : t;
      if (!/^[a-z][a-z ]{0,31}$/.test(view)) throw invalidArgument("edit_type", "multi-view needs a view name such as left, right or back");
      return `multi_view_${view}`;
    }
    case "subject":
      return "subject_driven";
    case "style":
      return "image_ref_transfer";
    default:
      return "";
  }
}

export const imageToImage: ImageFamily = {
  sizeField: "images[0]",
  needsMask: false,
  // The reference caches only text-to-image and painting; the three-branch loop saves the same share of the
  // transformer's work (the input image blocks are recomputed on refresh steps only), docs/ml-cache.md.
  cacheable: true,
  defaultGuidance: 2.5,
  editType,
  // Style transfer, multi-view and the dense branch ("<x>_dense") have fixed prompts; "<x>_pred" uses the user's.
  promptRequired: (_kind, editType) => usesUserPrompt(editType),
  imageCount: (kind) => (kind === "style" ? 2 : 1),
  requestedSize: () => ({ width: 0, height: 0 }),
  prompts: (p) => imageToImagePrompts(p.editType, p.prompt),
  inputPrep: "crop512",
  async inputs(prepared) {
    const images = prepared.map((p) => p.image);
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
