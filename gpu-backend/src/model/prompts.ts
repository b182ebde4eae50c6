// DiMOO's system prompts and prompt templates, verbatim from the reference (utils/prompt_utils.py,
// docs/model.md §1.4). The strings are part of the model's trained conditioning: any change, even a space,
// is a different prompt, so they live here once and everything else builds on these functions.

export const T2I_SYSTEM_PROMPT = "Generate an image according to the text prompt.";
export const EDIT_SYSTEM_PROMPT = "Generate an image applying the following editing instruction based on the original image.";
export const CONTROL_SYSTEM_PROMPT = "Generate an image according to the text prompt and the given control image.";
export const SUBJECT_SYSTEM_PROMPT = "Generate an image according to the text prompt and the given object image.";
export const STYLE_TRANSFER_SYSTEM_PROMPT = "Transform the current image into the style of the provided image.";
export const MULTI_VIEW_SYSTEM_PROMPT = "Generate a view-image based on the given image.";
export const DENSE_SYSTEM_PROMPT = "Perform dense prediction on the given images.";
export const GENERIC_I2I_SYSTEM_PROMPT = "Generate an image according to the prompt and image.";
export const UNDERSTANDING_SYSTEM_PROMPT =
  "You are a multimodal model that can process both text and images. Answer the following question based on the provided images. Analyze each image and combine relevant details to answer.";

/** The CFG null prompt; the tokenizer maps it to the single special id UNCONDITION (126351). */
export const UNCONDITION_TEXT = "<uncondition>";

/** Dense-prediction targets keyed by `editType.split('_')[0]`; anything else is "dense map". */
export const DENSE_TARGETS: Readonly<Record<string, string>> = {
  canny: "canny edge map",
  hed: "hed edge map",
  normal: "normal map",
  sam2mask: "sam2 mask",
  depth: "depth map",
  openpose: "pose estimation map",
};

/** Conditional and CFG-unconditional prompt strings of one request (both use the same system prompt). */
export interface PromptPair {
  system: string;
  user: string;
  cond: string;
  uncond: string;
}

/** `<system>S</system><user>U</user>`: no spaces or newlines between the parts. */
export function chatPrompt(system: string, user: string): string {
  return "<system>" + system + "</system>" + "<user>" + user + "</user>";
}

export function uncondPrompt(system: string): string {
  return chatPrompt(system, UNCONDITION_TEXT);
}

function pair(system: string, user: string): PromptPair {
  return { system, user, cond: chatPrompt(system, user), uncond: uncondPrompt(system) };
}

/** Text-to-image; also inpainting and outpainting, which run the text-to-image path. */
export function textToImagePrompts(prompt: string): PromptPair {
  return pair(T2I_SYSTEM_PROMPT, prompt);
}

/**
 * Image-to-image prompts for a reference `edit_type`. Substring tests in the reference's order
 * (dense, control, subject, edit, ref_transfer, multi_view, else), so e.g. "canny_pred" lands in the
 * generic branch exactly as the reference does (docs/model.md §11) even though it looks like a dense task.
 */
export function imageToImagePrompts(editType: string, prompt: string): PromptPair {
  if (editType.includes("dense")) {
    const key = editType.split("_")[0];
    const target = Object.prototype.hasOwnProperty.call(DENSE_TARGETS, key) ? DENSE_TARGETS[key] : "dense map";
    return pair(DENSE_SYSTEM_PROMPT, `Generate a ${target} according to the image.`);
  }
  if (editType.includes("control")) return pair(CONTROL_SYSTEM_PROMPT, prompt);
  if (editType.includes("subject")) return pair(SUBJECT_SYSTEM_PROMPT, prompt);
  if (editType.includes("edit")) return pair(EDIT_SYSTEM_PROMPT, prompt);
  if (editType.includes("ref_transfer")) return pair(STYLE_TRANSFER_SYSTEM_PROMPT, STYLE_TRANSFER_SYSTEM_PROMPT);
  if (editType.includes("multi_view")) {
    const parts = editType.split("_");
    return pair(MULTI_VIEW_SYSTEM_PROMPT, `Generate the ${parts[parts.length - 1]} view based on the provided front view.`);
  }
  return pair(GENERIC_I2I_SYSTEM_PROMPT, prompt);
}

/** Whether the reference's prompt for an edit_type carries the user's text (else the user text is fixed). */
export function usesUserPrompt(editType: string): boolean {
  const probe = "\u0000user\u0000";
  return imageToImagePrompts(editType, probe).user === probe;
}

/** Whether an edit_type takes two images (content + style). */
export function isStyleTransfer(editType: string): boolean {
  // Mirrors the branch order above: only types that reach the ref_transfer branch use two images.
  return (
    !editType.includes("dense") &&
    !editType.includes("control") &&
    !editType.includes("subject") &&
    !editType.includes("edit") &&
    editType.includes("ref_transfer")
  );
}

/** Understanding has no unconditional prompt: its CFG masks the prompt positions instead (docs/model.md §5.2). */
export function understandingPrompt(question: string): string {
  return chatPrompt(UNDERSTANDING_SYSTEM_PROMPT, question);
}
