// Request and response schemas of /v1/images/generations and /v1/images/edits (OpenAI-compatible).
import { z } from "@hono/zod-openapi";
import { LIMITS } from "../config";
import { generationOptions, Prompt, Size } from "./common";

export const ImageGenerationRequest = z
  .object({
    prompt: Prompt,
    model: z.string().optional().openapi({ example: "lumina-dimoo" }),
    size: Size.default("1024x1024"),
    ...generationOptions,
  })
  .openapi("ImageGenerationRequest");

export const EDIT_TASKS = ["edit", "subject", "control", "dense", "style", "multiview", "inpaint", "outpaint"] as const;

/** Multipart numbers: plain decimal text only ("0x2", "1e3" or "" stay text and fail as the wrong type). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const num = (s: z.ZodNumber) => z.preprocess((v) => (typeof v === "string" && DECIMAL.test(v.trim()) ? Number(v) : v), s);
const bool = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());

/** Non-file fields of an edit; multipart strings are coerced. */
export const ImageEditFields = z.object({
  prompt: Prompt,
  model: z.string().optional(),
  task: z.enum(EDIT_TASKS).optional().openapi({ description: "Default: inpaint when a mask is given, else edit" }),
  edit_type: z
    .string()
    .max(64)
    .optional()
    .openapi({ description: "Sub-type: edit_add/edit_remove/... (edit), canny/depth/hed/openpose (control), canny_pred/hed_pred/depth_pred/openpose_pred or <x>_dense (dense), view name (multiview)" }),
  size: Size.optional().openapi({ description: "Ignored: the task sets the output size (docs/edge.md, Output sizes)" }),
  n: num(z.number().int().min(1).max(LIMITS.maxN)).optional().default(1),
  response_format: generationOptions.response_format,
  output_format: generationOptions.output_format,
  output_compression: num(z.number().int().min(0).max(100)).optional(),
  stream: bool.optional().default(false),
  partial_images: num(z.number().int().min(0).max(3)).optional().default(0),
  user: z.string().max(256).optional(),
  seed: num(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).optional(),
  steps: num(z.number().int().min(1).max(1024)).optional(),
  guidance_scale: num(z.number().min(0).max(50)).optional(),
  image_guidance_scale: num(z.number().min(0).max(50)).optional(),
  temperature: num(z.number().min(0).max(10)).optional(),
  ml_cache: bool.optional().openapi({ description: "DiMOO extension: run with the Max-Logit cache at its defaults (every edit task)" }),
  raw_decode: bool.optional().openapi({
    description:
      "DiMOO extension (inpaint, outpaint): true returns the model's raw decode of the whole image (size floored to multiples of 16) instead of your image with the generated pixels blended in inside the mask (default false)",
  }),
  quality: z.string().optional(),
  background: z.string().optional(),
  input_fidelity: z.string().optional(),
});

const binary = z.any().openapi({ type: "string", format: "binary" });

export const ImageEditMultipart = ImageEditFields.extend({
  image: z.union([binary, z.array(binary)]).openapi({ description: "Input image(s), PNG/JPEG/WebP; `image[]` is accepted too. Up to 4." }),
  mask: binary.optional().openapi({ description: "PNG, same size as the first image; transparent pixels are regenerated (OpenAI convention)" }),
}).openapi("ImageEditRequest");

export const ImageData = z.object({
  b64_json: z.string().optional(),
  url: z.string().optional(),
  seed: z.number().int().optional().openapi({ description: "DiMOO extension" }),
});

export const ImageUsage = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({ image_tokens: z.number().int(), text_tokens: z.number().int() }),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  billing_unit: z.literal("megapixel_step"),
  billing_units: z.number(),
  steps: z.number().int(),
});

export const ImagesResponse = z
  .object({
    created: z.number().int(),
    data: z.array(ImageData),
    output_format: z.string(),
    size: z.string(),
    quality: z.string(),
    background: z.string(),
    usage: ImageUsage,
  })
  .openapi("ImagesResponse");
