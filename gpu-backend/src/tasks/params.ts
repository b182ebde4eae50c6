// Request fields to task parameters, for checks that need no model: task, edit type, counts, sizes, ranges,
// defaults. Each failure is INVALID_ARGUMENT naming the proto field. Decoding images and counting prompt
// tokens happen in the families' validate (they need sharp and the tokenizer) and report the same way.
import { ImageFormat, Task, type GenerateRequest, type UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { invalidArgument } from "../errors";
import type { Limits } from "./limits";

export type TaskKind = "t2i" | "edit" | "subject" | "control" | "dense" | "style" | "multiview" | "inpaint" | "outpaint";

export const TASK_KINDS: Record<number, TaskKind> = {
  [Task.TEXT_TO_IMAGE]: "t2i",
  [Task.EDIT]: "edit",
  [Task.SUBJECT]: "subject",
  [Task.CONTROL]: "control",
  [Task.DENSE]: "dense",
  [Task.STYLE]: "style",
  [Task.MULTIVIEW]: "multiview",
  [Task.INPAINT]: "inpaint",
  [Task.OUTPAINT]: "outpaint",
};

export const SUPPORTED_TASKS: Task[] = Object.keys(TASK_KINDS).map((k) => Number(k) as Task);

const EDIT_TYPES = ["add", "remove", "replace", "background", "text_transfer"];
const CONTROL_TYPES = ["canny", "depth", "hed", "openpose"];
const DENSE_TYPES = ["canny", "hed", "depth", "openpose", "normal", "sam2mask"];

export interface GenerateParams {
  kind: TaskKind;
  /** The reference's edit_type string (prompt selection), e.g. "edit_add", "canny_control", "multi_view_left". */
  editType: string;
  prompt: string;
  /** Text-to-image only; other tasks take their size from the input images. */
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  imageGuidanceScale: number;
  temperature: number;
  seed: bigint;
  /** Input images needed by the task: 0, 1 or 2. */
  imageCount: number;
  needsMask: boolean;
  format: "png" | "webp" | "jpeg";
  quality: number;
  previewEvery: number;
}

export const DEFAULTS = {
  side: 1024,
  steps: 64,
  guidance: 4.0,
  i2iGuidance: 2.5,
  imageGuidance: 4.0,
  temperature: 1.0,
  answerTokens: 256,
  understandBlock: 32,
};

/** A fresh 63-bit seed (so it survives JSON number round-trips at the edge better than 64 bits). */
export function randomSeed(): bigint {
  const a = Math.floor(Math.random() * 0x80000000);
  const b = Math.floor(Math.random() * 0x100000000);
  return (BigInt(a) << 32n) | BigInt(b);
}

function finiteIn(field: string, v: number | undefined, lo: number, hi: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < lo || v > hi) throw invalidArgument(field, `must be between ${lo} and ${hi}`);
  return v;
}

function normalizeEditType(kind: TaskKind, raw: string): string {
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

export function validateGenerateParams(req: GenerateRequest, limits: Limits): GenerateParams {
  const kind = TASK_KINDS[req.task];
  if (!kind) throw invalidArgument("task", req.task === Task.UNSPECIFIED ? "task is required" : `unknown task ${req.task}`);
  const editType = normalizeEditType(kind, req.editType);

  const prompt = req.prompt;
  const promptFree = kind === "style" || kind === "multiview" || kind === "dense";
  if (!promptFree && prompt.trim().length === 0) throw invalidArgument("prompt", "prompt must not be empty");

  let width = 0;
  let height = 0;
  if (kind === "t2i") {
    width = req.width || DEFAULTS.side;
    height = req.height || DEFAULTS.side;
    for (const [field, v] of [["width", width], ["height", height]] as const) {
      if (v % 16 !== 0) throw invalidArgument(field, `${v} is not a multiple of 16`);
      if (v < 16 || v > limits.maxSide) throw invalidArgument(field, `must be between 16 and ${limits.maxSide}`);
    }
    if (width * height > limits.maxPixels) throw invalidArgument("width", `${width}x${height} exceeds the ${limits.maxPixels}-pixel budget`);
  }

  const steps = req.steps || DEFAULTS.steps;
  if (steps < 1 || steps > limits.maxSteps) throw invalidArgument("steps", `must be between 1 and ${limits.maxSteps}`);

  const i2i = kind !== "t2i" && kind !== "inpaint" && kind !== "outpaint";
  const guidanceScale = finiteIn("guidance_scale", req.guidanceScale, 0, 50, i2i ? DEFAULTS.i2iGuidance : DEFAULTS.guidance);
  const imageGuidanceScale = finiteIn("image_guidance_scale", req.imageGuidanceScale, 0, 50, DEFAULTS.imageGuidance);
  const temperature = finiteIn("temperature", req.temperature, 0, 10, DEFAULTS.temperature);

  const imageCount = kind === "t2i" ? 0 : kind === "style" ? 2 : 1;
  if (kind === "t2i" && req.images.length > 0) throw invalidArgument("images", "text-to-image takes no input image");
  if (req.images.length < imageCount) throw invalidArgument(`images[${req.images.length}]`, `${kind} needs ${imageCount} input image${imageCount > 1 ? "s" : ""}`);
  if (req.images.length > imageCount) throw invalidArgument("images", `${kind} takes ${imageCount} input image${imageCount > 1 ? "s" : ""}`);
  req.images.forEach((img, i) => {
    if (img.length === 0) throw invalidArgument(`images[${i}]`, "empty image");
    if (img.length > limits.maxInputBytes) throw invalidArgument(`images[${i}]`, `larger than ${limits.maxInputBytes} bytes`);
  });
  const needsMask = kind === "inpaint" || kind === "outpaint";
  if (needsMask && req.mask.length === 0) throw invalidArgument("mask", `${kind} needs a mask image`);
  if (!needsMask && req.mask.length > 0) throw invalidArgument("mask", `${kind} takes no mask`);
  if (req.mask.length > limits.maxInputBytes) throw invalidArgument("mask", `larger than ${limits.maxInputBytes} bytes`);

  let format: GenerateParams["format"];
  switch (req.outputFormat) {
    case ImageFormat.UNSPECIFIED:
    case ImageFormat.PNG:
      format = "png";
      break;
    case ImageFormat.WEBP:
      format = "webp";
      break;
    case ImageFormat.JPEG:
      format = "jpeg";
      break;
    default:
      throw invalidArgument("output_format", `unknown format ${req.outputFormat}`);
  }
  if (req.outputQuality > 100) throw invalidArgument("output_quality", "must be between 1 and 100");
  const quality = req.outputQuality || (format === "jpeg" ? 90 : 85);
  if (req.previewEvery > limits.maxSteps) throw invalidArgument("preview_every", `must be at most ${limits.maxSteps}`);

  const seed = req.seed ?? randomSeed();
  return {
    kind,
    editType,
    prompt,
    width,
    height,
    steps,
    guidanceScale,
    imageGuidanceScale,
    temperature,
    seed,
    imageCount,
    needsMask,
    format,
    quality,
    previewEvery: req.previewEvery,
  };
}

export interface UnderstandParams {
  question: string;
  maxTokens: number;
  blockLength: number;
  steps: number;
  temperature: number;
  guidanceScale: number;
  seed: bigint;
}

export function validateUnderstandParams(req: UnderstandRequest, limits: Limits): UnderstandParams {
  if (req.question.trim().length === 0) throw invalidArgument("question", "question must not be empty");
  if (req.images.length !== 1) throw invalidArgument(req.images.length === 0 ? "images[0]" : "images", "understanding takes exactly one image");
  req.images.forEach((img, i) => {
    if (img.length === 0) throw invalidArgument(`images[${i}]`, "empty image");
    if (img.length > limits.maxInputBytes) throw invalidArgument(`images[${i}]`, `larger than ${limits.maxInputBytes} bytes`);
  });
  const maxTokens = req.maxTokens || Math.min(DEFAULTS.answerTokens, limits.maxAnswerTokens);
  if (maxTokens < 1 || maxTokens > limits.maxAnswerTokens) throw invalidArgument("max_tokens", `must be between 1 and ${limits.maxAnswerTokens}`);
  const blockLength = req.blockLength || Math.min(DEFAULTS.understandBlock, maxTokens);
  if (blockLength < 1 || maxTokens % blockLength !== 0) throw invalidArgument("block_length", `must divide max_tokens (${maxTokens})`);
  if (blockLength > limits.maxBlockLength) throw invalidArgument("block_length", `must be at most ${limits.maxBlockLength}`);
  const blocks = maxTokens / blockLength;
  const steps = req.steps || maxTokens;
  if (steps % blocks !== 0) throw invalidArgument("steps", `must be a multiple of the block count (${blocks})`);
  if (steps > Math.max(limits.maxSteps, limits.maxAnswerTokens)) throw invalidArgument("steps", "too many steps");
  const temperature = finiteIn("temperature", req.temperature, 0, 10, 0);
  const guidanceScale = finiteIn("guidance_scale", req.guidanceScale, 0, 50, 0);
  return { question: req.question, maxTokens, blockLength, steps, temperature, guidanceScale, seed: req.seed ?? randomSeed() };
}
