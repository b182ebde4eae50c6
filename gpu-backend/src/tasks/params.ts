// Request fields to task parameters, for the checks that need no model: task, steps, ranges, counts, output
// format, defaults; each image family adds its own (edit type, output size, inputs, mask, guidance
// default). Each failure is INVALID_ARGUMENT naming the proto field. Decoding images and counting prompt
// tokens happen in the families' validate (they need sharp and the tokenizer) and report the same way.
import { ImageFormat, Task, type GenerateRequest, type MlCache } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { ML_CACHE_DEFAULTS, type MlCacheParams } from "../sampling/ml-cache";
import { invalidArgument } from "../errors";
import type { GenerateParams, ImageFamily, TaskKind } from "./image-family";
import { imageToImage } from "./image-to-image";
import type { Limits } from "./limits";
import { painting } from "./painting";
import { textToImage } from "./text-to-image";

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

/** Reference defaults every image family shares. */
const DEFAULT_STEPS = 64;
const DEFAULT_TEMPERATURE = 1.0;
const DEFAULT_IMAGE_GUIDANCE = 4.0;

export function familyOf(kind: TaskKind): ImageFamily {
  if (kind === "t2i") return textToImage;
  if (kind === "inpaint" || kind === "outpaint") return painting;
  return imageToImage;
}

/** A fresh 63-bit seed (so it survives JSON number round-trips at the edge better than 64 bits). */
export function randomSeed(): bigint {
  const a = Math.floor(Math.random() * 0x80000000);
  const b = Math.floor(Math.random() * 0x100000000);
  return (BigInt(a) << 32n) | BigInt(b);
}

export function finiteIn(field: string, v: number | undefined, lo: number, hi: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < lo || v > hi) throw invalidArgument(field, `must be between ${lo} and ${hi}`);
  return v;
}

/** Refuses text longer than the character limit, before any tokenizer sees it. */
export function checkTextLength(field: string, text: string, limits: Limits): void {
  if (text.length > limits.maxPromptChars) throw invalidArgument(field, `${text.length} characters exceeds the limit of ${limits.maxPromptChars}`);
}

/** Checks encoded input images: present, not empty, within the byte limit. */
export function checkImageBytes(images: readonly Uint8Array[], limits: Limits): void {
  images.forEach((img, i) => {
    if (img.length === 0) throw invalidArgument(`images[${i}]`, "empty image");
    if (img.length > limits.maxInputBytes) throw invalidArgument(`images[${i}]`, `larger than ${limits.maxInputBytes} bytes`);
  });
}

/** The cache's parameters, defaults filled in, in the ranges the reference accepts (docs/model.md §6.1). */
function mlCacheParams(req: MlCache, kind: TaskKind, family: ImageFamily, steps: number): MlCacheParams {
  if (!family.cacheable) throw invalidArgument("ml_cache", `${kind} runs without the cache`);
  const d = ML_CACHE_DEFAULTS;
  const cacheRatio = req.cacheRatio ?? d.cacheRatio;
  if (!(cacheRatio >= 0 && cacheRatio < 1)) throw invalidArgument("ml_cache.cache_ratio", "must be at least 0 and below 1");
  const warmupRatio = req.warmupRatio ?? d.warmupRatio;
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw invalidArgument("ml_cache.warmup_ratio", "must be between 0 and 1");
  const refreshInterval = req.refreshInterval ?? d.refreshInterval;
  const most = steps - Math.trunc(steps * warmupRatio) - 1;
  if (refreshInterval < 2 || refreshInterval > most) {
    throw invalidArgument("ml_cache.refresh_interval", most < 2 ? `${steps} steps leave no cached step at this warm-up ratio` : `must be between 2 and ${most} for ${steps} steps`);
  }
  return { cacheRatio, warmupRatio, refreshInterval };
}

export function validateGenerateParams(req: GenerateRequest, limits: Limits): GenerateParams {
  const kind = TASK_KINDS[req.task];
  if (!kind) throw invalidArgument("task", req.task === Task.UNSPECIFIED ? "task is required" : `unknown task ${req.task}`);
  const family = familyOf(kind);
  const editType = family.editType(kind, req.editType);

  const prompt = req.prompt;
  if (family.promptRequired(kind, editType) && prompt.trim().length === 0) throw invalidArgument("prompt", "prompt must not be empty");
  checkTextLength("prompt", prompt, limits);

  const { width, height } = family.requestedSize(req, limits);

  const steps = req.steps || DEFAULT_STEPS;
  if (steps < 1 || steps > limits.maxSteps) throw invalidArgument("steps", `must be between 1 and ${limits.maxSteps}`);

  const guidanceScale = finiteIn("guidance_scale", req.guidanceScale, 0, 50, family.defaultGuidance);
  const imageGuidanceScale = finiteIn("image_guidance_scale", req.imageGuidanceScale, 0, 50, DEFAULT_IMAGE_GUIDANCE);
  const temperature = finiteIn("temperature", req.temperature, 0, 10, DEFAULT_TEMPERATURE);

  const imageCount = family.imageCount(kind);
  const plural = imageCount > 1 ? "s" : "";
  if (imageCount === 0 && req.images.length > 0) throw invalidArgument("images", "text-to-image takes no input image");
  if (req.images.length < imageCount) throw invalidArgument(`images[${req.images.length}]`, `${kind} needs ${imageCount} input image${plural}`);
  if (req.images.length > imageCount) throw invalidArgument("images", `${kind} takes ${imageCount} input image${plural}`);
  checkImageBytes(req.images, limits);
  const needsMask = family.needsMask;
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

  const mlCache = req.mlCache?.enabled ? mlCacheParams(req.mlCache, kind, family, steps) : undefined;
  if (req.rawDecode && !needsMask) throw invalidArgument("raw_decode", `${kind} has no blend to skip (inpaint and outpaint only)`);

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
    mlCache,
    rawDecode: req.rawDecode,
  };
}
