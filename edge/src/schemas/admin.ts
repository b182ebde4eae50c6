// Admin API schemas: keys (created, listed, revoked, re-planned), plans and cross-account usage.
import { z } from "@hono/zod-openapi";
import { DEFAULTS, LIMITS } from "../config";

export const PlanSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9_-]{1,32}$/),
    name: z.string().min(1).max(64),
    rpm: z.number().int().min(1).max(100_000),
    burst: z.number().int().min(1).max(100_000),
    concurrency: z.number().int().min(1).max(1000),
    monthly_units: z.number().int().min(0),
    max_pixels: z.number().int().min(64 * 64),
    max_steps: z.number().int().min(1).max(4096),
    max_answer_tokens: z.number().int().min(1).max(LIMITS.maxAnswerTokens).openapi({ description: "chat: largest answer token budget (max_tokens)" }),
  })
  .openapi("Plan");

export const PlanBody = PlanSchema.omit({ id: true }).extend({ max_answer_tokens: PlanSchema.shape.max_answer_tokens.default(DEFAULTS.answerTokens) });

export const KeyCreateBody = z
  .object({
    account_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional().openapi({ description: "default: a new account" }),
    name: z.string().max(128).optional(),
    plan: z.string().default("free"),
    mode: z.enum(["live", "test"]).default("live"),
    key: z.string().optional().openapi({ description: "register this existing key instead of generating one (local development)" }),
  })
  .openapi("KeyCreateRequest");

export const KeyInfo = z
  .object({
    id: z.string(),
    object: z.literal("api_key"),
    start: z.string(),
    mode: z.enum(["live", "test"]),
    account_id: z.string(),
    name: z.string().nullable(),
    plan: z.string(),
    created_at: z.number().int(),
    revoked_at: z.number().int().nullable(),
  })
  .openapi("ApiKey");

export const KeyCreated = KeyInfo.extend({ key: z.string().openapi({ description: "shown once; only its SHA-256 digest is stored" }) }).openapi("ApiKeyCreated");

export const KeyPatchBody = z.object({ plan: z.string() });

export const AdminUsageQuery = z.object({
  account_id: z.string().optional(),
  start_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  end_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
});
