// GET /v1/usage: the caller's committed usage by UTC day and task, plus the current month's quota.
import { z } from "@hono/zod-openapi";

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "dates are YYYY-MM-DD");

export const UsageQuery = z.object({
  start_date: Day.optional().openapi({ description: "inclusive, default: first day of this month" }),
  end_date: Day.optional().openapi({ description: "inclusive, default: today" }),
});

export const UsageResponse = z
  .object({
    object: z.literal("usage"),
    billing_unit: z.literal("megapixel_step"),
    start_date: z.string(),
    end_date: z.string(),
    data: z.array(z.object({ date: z.string(), task: z.string(), requests: z.number().int(), units: z.number() })),
    quota: z.object({
      month: z.string(),
      limit_units: z.number(),
      used_units: z.number(),
      reserved_units: z.number(),
      remaining_units: z.number(),
      concurrency_limit: z.number().int(),
      in_flight: z.number().int(),
    }),
  })
  .openapi("Usage");
