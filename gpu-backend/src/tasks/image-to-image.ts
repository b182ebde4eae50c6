// Image-to-image (docs/model.md §4.1-4.2): edit, subject-driven, control, dense prediction and multi-view
// take one input image, style transfer a content and a style image. Each input is cropped with the 512
// crop list; the output takes the last image's crop size; dual guidance over text and image.
import { invalidArgument } from "../errors";
import { prepareImageToImageInput } from "../model/image-codec";
import { gridForPixels, imageBlockLength } from "../model/layout";
import { imageToImagePrompts } from "../model/prompts";
import { initImageToImage } from "../sampling/image-to-image";
import type { ImageFamily, TaskKind } from "./image-family";

const EDIT_TYPES = ["add", "remove", "replace", "background", "text_transfer"];
const CONTROL_TYPES = ["canny", "depth", "hed", "openpose"];
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
      const base = t.replace(/_(dense|pred)$/, "");
      if (!DENSE_TYPES.includes(base)) throw invalidArgument("edit_type", `dense prediction needs one of ${DENSE_TYPES.join(", ")}`);
      return `${base}_dense`;
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
  // Style transfer, multi-view and dense prediction have fixed prompts.
  promptRequired: (kind) => kind !== "style" && kind !== "multiview" && kind !== "dense",
  imageCount: (kind) => (kind === "style" ? 2 : 1),
  requestedSize: () => ({ width: 0, height: 0 }),
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
