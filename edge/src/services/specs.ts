// Validated public request bodies -> internal work specs (ImageSpec / UnderstandSpec), with the caller's
// plan limits (max resolution, max steps) and the model id checked. Shared by sync routes and async jobs.
import type { z } from "@hono/zod-openapi";
import type { Env } from "../env";
import type { Plan } from "../plan";
import { tenantOf, type Principal } from "../principal";
import { ApiError, invalid } from "../errors";
import { DEFAULTS, LIMITS } from "../config";
import { parseSize, type MlCacheOption } from "../schemas/common";
import type { ImageGenerationRequest, ImageEditFields } from "../schemas/images";
import { chatQuestion, type ChatCompletionRequest } from "../schemas/chat";
import type { ImageSpec } from "./images";
import type { UnderstandSpec } from "./understand";
import { loadImageRef, type InputImage } from "./inputs";
import { editWork } from "../lib/output-size";

export const modelId = (env: Env) => env.MODEL_ID || DEFAULTS.model;

export function checkModel(env: Env, model: string | undefined): void {
  if (model !== undefined && model !== modelId(env) && model !== "dimoo") {
    throw new ApiError(404, "invalid_request_error", `The model '${model}' does not exist. Use '${modelId(env)}'.`, "model_not_found", "model");
  }
}

const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0];

function checkPixels(plan: Plan, width: number, height: number, param: string): void {
  if (width * height > plan.max_pixels) throw invalid(`${param} is ${width}x${height}, more than your plan's maximum of ${plan.max_pixels} pixels per image`, param, "size_not_allowed");
}

function checkSteps(plan: Plan, steps: number, param = "steps"): void {
  if (steps > plan.max_steps) throw invalid(`${param} ${steps} exceeds your plan's maximum of ${plan.max_steps} steps`, param, "steps_not_allowed");
}

/** Each of the n images is its own orchestrator call and takes a concurrency slot: n may not exceed the plan's. */
function checkImageCount(plan: Plan, n: number): void {
  if (n > plan.concurrency) {
    throw invalid(`n is ${n}, but your plan runs at most ${plan.concurrency} image${plan.concurrency === 1 ? "" : "s"} at a time (each image takes a concurrency slot)`, "n", "n_not_allowed");
  }
}

/** The cache's parameters from the request's `ml_cache` (every image task takes it). */
function mlCacheOf(option: z.infer<typeof MlCacheOption> | undefined): ImageSpec["mlCache"] {
  if (!option) return undefined;
  if (option === true) return {};
  return { cacheRatio: option.cache_ratio, warmupRatio: option.warmup_ratio, refreshInterval: option.refresh_interval };
}

export function generationSpec(env: Env, body: z.infer<typeof ImageGenerationRequest>, who: Principal): ImageSpec {
  const plan = who.plan;
  checkModel(env, body.model);
  const size = parseSize(body.size, { width: DEFAULTS.width, height: DEFAULTS.height });
  if (typeof size === "string") throw invalid(size, "size");
  const steps = body.steps ?? DEFAULTS.steps;
  checkPixels(plan, size.width, size.height, "size");
  checkSteps(plan, steps);
  checkImageCount(plan, body.n);
  return {
    kind: "image_generation",
    task: "text_to_image",
    prompt: body.prompt,
    width: size.width,
    height: size.height,
    inputPixels: 0,
    steps,
    n: body.n,
    seed: body.seed ?? randomSeed(),
    outputFormat: body.output_format,
    outputQuality: body.output_compression,
    partialImages: body.stream ? body.partial_images : 0,
    guidanceScale: body.guidance_scale,
    temperature: body.temperature,
    mlCache: mlCacheOf(body.ml_cache),
    images: [],
    tenant: tenantOf(who),
  };
}

export function editSpec(env: Env, f: z.infer<typeof ImageEditFields>, images: InputImage[], mask: InputImage | undefined, who: Principal): ImageSpec {
  const plan = who.plan;
  checkModel(env, f.model);
  if (images.length === 0) throw invalid("image is required", "image", "missing_required_parameter");
  if (images.length > LIMITS.maxImages) throw invalid(`at most ${LIMITS.maxImages} images`, "image");
  const first = images[0].info;
  if (mask) {
    if (mask.info.type !== "png") throw invalid("mask must be a PNG (transparent pixels mark what to regenerate)", "mask", "invalid_image_format");
    if (mask.info.width !== first.width || mask.info.height !== first.height) {
      throw invalid(`mask is ${mask.info.width}x${mask.info.height} but the image is ${first.width}x${first.height}`, "mask", "invalid_image_size");
    }
  }
  const task = f.task ?? (mask ? "inpaint" : "edit");
  if ((task === "inpaint" || task === "outpaint") && !mask) throw invalid(`task '${task}' needs a mask`, "mask", "missing_required_parameter");
  if (task === "style" && images.length !== 2) throw invalid("task 'style' needs two images: content, then style reference", "image");
  if (task !== "style" && images.length !== 1) throw invalid(`task '${task}' takes one image`, "image");
  const steps = f.steps ?? DEFAULTS.steps;
  // every input, not only the one that sets the output size: the model reads all of them at every step
  for (const im of images) checkPixels(plan, im.info.width, im.info.height, im.param);
  checkSteps(plan, steps);
  checkImageCount(plan, f.n);
  // the size the orchestrator will produce and the input pixels its model reads: what is reserved and charged
  const work = editWork(task, images.map((im) => im.info));
  if (work.width * work.height > plan.max_pixels) {
    throw invalid(`this edit's output would be ${work.width}x${work.height}, more than your plan's maximum of ${plan.max_pixels} pixels per image`, "image", "size_not_allowed");
  }
  return {
    kind: "image_edit",
    task,
    prompt: f.prompt,
    width: work.width,
    height: work.height,
    inputPixels: work.inputPixels,
    steps,
    n: f.n,
    seed: f.seed ?? randomSeed(),
    outputFormat: f.output_format,
    outputQuality: f.output_compression,
    partialImages: f.stream ? f.partial_images : 0,
    guidanceScale: f.guidance_scale,
    imageGuidanceScale: f.image_guidance_scale,
    temperature: f.temperature,
    mlCache: f.ml_cache ? mlCacheOf(f.ml_cache) : undefined,
    editType: f.edit_type,
    rawDecode: f.raw_decode,
    images: images.map((i) => i.bytes),
    mask: mask?.bytes,
    tenant: tenantOf(who),
  };
}

/**
 * The answer's token budget and steps, within the plan: an explicit budget or step count over the plan's
 * limit is a 400; by default the answer takes one step per token, and a plan with fewer steps than the
 * budget decodes several tokens per step.
 */
function answerBudget(plan: Plan, body: z.infer<typeof ChatCompletionRequest>): { maxTokens: number; steps?: number } {
  const param = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const asked = body.max_completion_tokens ?? body.max_tokens;
  if (asked !== undefined && asked > plan.max_answer_tokens) {
    throw invalid(`${param} ${asked} exceeds your plan's maximum of ${plan.max_answer_tokens} answer tokens`, param, "tokens_not_allowed");
  }
  const maxTokens = asked ?? Math.min(DEFAULTS.answerTokens, plan.max_answer_tokens);
  if (body.steps !== undefined) checkSteps(plan, body.steps);
  return { maxTokens, steps: body.steps ?? (maxTokens > plan.max_steps ? plan.max_steps : undefined) };
}

/** The question is the last user message's text (system/developer text prepended); images come from all user messages. */
export async function chatSpec(env: Env, body: z.infer<typeof ChatCompletionRequest>, who: Principal): Promise<UnderstandSpec> {
  const plan = who.plan;
  checkModel(env, body.model);
  const { maxTokens, steps } = answerBudget(plan, body);
  const refs: { url: string; param: string }[] = [];
  body.messages.forEach((m, i) => {
    if (m.role !== "user" || typeof m.content === "string") return;
    (m.content ?? []).forEach((p, j) => {
      if (p.type === "image_url") refs.push({ url: p.image_url.url, param: `messages.${i}.content.${j}.image_url.url` });
    });
  });
  const { system, question } = chatQuestion(body.messages);
  if (refs.length === 0) throw invalid("at least one image_url content part is required (this model answers questions about images)", "messages", "missing_required_parameter");
  if (refs.length > LIMITS.maxImages) throw invalid(`at most ${LIMITS.maxImages} images`, "messages");
  const images = await Promise.all(refs.map((r) => loadImageRef(env, r.url, r.param)));
  return {
    question: [...system.filter(Boolean), question.trim() ? question : "Describe this image."].join("\n"),
    images: images.map((i) => i.bytes),
    inputPixels: images.reduce((s, i) => s + i.info.width * i.info.height, 0),
    maxTokens,
    steps,
    temperature: body.temperature,
    seed: body.seed,
    tenant: tenantOf(who),
  };
}
