// Shared schemas: OpenAI's error body, sizes, formats and the standard error responses of a route.
import { z } from "@hono/zod-openapi";
import { LIMITS } from "../config";
import { overTokens } from "../lib/text-bounds";

export const ErrorSchema = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string().openapi({ example: "invalid_request_error" }),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .openapi("Error");

const errorResponse = (description: string) => ({ content: { "application/json": { schema: ErrorSchema } }, description });

/** Error responses every authenticated route can give (documented once, reused). */
export const authErrors = {
  401: errorResponse("Missing, malformed, unknown or revoked API key"),
  429: errorResponse("Rate limit (rate_limit_exceeded), concurrency (concurrency_limit_exceeded) or quota (insufficient_quota); Retry-After when retrying helps"),
} as const;

export const workErrors = {
  ...authErrors,
  400: errorResponse("Validation error; `param` names the field"),
  409: errorResponse("Idempotency-Key still in use"),
  413: errorResponse("Body too large"),
  422: errorResponse("Idempotency-Key reused with a different body"),
  502: errorResponse("The model server failed"),
  503: errorResponse("No model server reachable (Retry-After); nothing is charged"),
} as const;

export const Size = z
  .string()
  .regex(/^(auto|\d{2,5}x\d{2,5})$/, "size must be WIDTHxHEIGHT, e.g. 1024x1024")
  .openapi({ example: "1024x1024", description: `WIDTHxHEIGHT, each a multiple of ${LIMITS.sideMultiple} in ${LIMITS.minSide}-${LIMITS.maxSide}` });

export const OutputFormat = z.enum(["png", "webp", "jpeg"]);
export const ResponseFormat = z.enum(["b64_json", "url"]);

/** A prompt: capped in characters and, as a lower bound, in the orchestrator's prompt tokens. */
export const Prompt = z
  .string()
  .min(1)
  .max(LIMITS.promptChars)
  .superRefine((text, ctx) => {
    const over = overTokens(text, LIMITS.promptTokens);
    if (over) ctx.addIssue({ code: "custom", message: `prompt ${over}` });
  })
  .openapi({ description: `At most ${LIMITS.promptChars} characters and ${LIMITS.promptTokens} tokens` });

/** Parses and range-checks "WxH"; "auto" means the default. */
export function parseSize(size: string, fallback: { width: number; height: number }): { width: number; height: number } | string {
  if (size === "auto") return fallback;
  const [w, h] = size.split("x").map(Number);
  for (const v of [w, h]) {
    if (v % LIMITS.sideMultiple !== 0) return `size sides must be multiples of ${LIMITS.sideMultiple}`;
    if (v < LIMITS.minSide || v > LIMITS.maxSide) return `size sides must be between ${LIMITS.minSide} and ${LIMITS.maxSide}`;
  }
  return { width: w, height: h };
}

/** Generation options shared by generations and edits (OpenAI names plus DiMOO extensions). */
/** The Max-Logit cache (docs/edge.md): true for the reference defaults, or its parameters. */
export const MlCacheOption = z
  .union([
    z.boolean(),
    z.object({
      cache_ratio: z.number().min(0).lt(1).optional().openapi({ description: "fraction of positions reused on a cached step (default 0.9)" }),
      warmup_ratio: z.number().min(0).max(1).optional().openapi({ description: "fraction of the steps that always refresh first (default 0.3)" }),
      refresh_interval: z.number().int().min(2).optional().openapi({ description: "refresh every N steps after the warm-up (default 5)" }),
    }),
  ])
  .openapi({ description: "DiMOO extension: run with the Max-Logit cache (every image task); off by default" });

export const generationOptions = {
  n: z.number().int().min(1).max(LIMITS.maxN).default(1).openapi({ description: "Images to generate; fans out as n calls with seed, seed+1, ..." }),
  response_format: ResponseFormat.default("b64_json").openapi({ description: "url: signed, expiring link to the stored image" }),
  output_format: OutputFormat.default("png"),
  output_compression: z.number().int().min(0).max(100).optional().openapi({ description: "webp/jpeg quality" }),
  stream: z.boolean().default(false),
  partial_images: z.number().int().min(0).max(3).default(0).openapi({ description: "previews to stream (stream: true)" }),
  user: z.string().max(256).optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().openapi({ description: "DiMOO extension: base seed" }),
  steps: z.number().int().min(1).max(1024).optional().openapi({ description: "DiMOO extension: diffusion steps (default 64)" }),
  guidance_scale: z.number().min(0).max(50).optional().openapi({ description: "DiMOO extension: text guidance" }),
  temperature: z.number().min(0).max(10).optional().openapi({ description: "DiMOO extension: sampling temperature" }),
  ml_cache: MlCacheOption.optional(),
  quality: z.enum(["auto", "low", "medium", "high", "standard", "hd"]).optional().openapi({ description: "Accepted for SDK compatibility; ignored" }),
  background: z.enum(["auto", "opaque", "transparent"]).optional().openapi({ description: "Accepted for SDK compatibility; ignored" }),
};
