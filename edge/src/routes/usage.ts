// GET /v1/usage: the caller's committed usage by UTC day and task (from the Account ledger, so it is exact
// and immediate), and this month's quota. GET /v1/webhooks/secret: the account's webhook signing secret.
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../validation";
import { UsageQuery, UsageResponse } from "../schemas/usage";
import { authErrors } from "../schemas/common";
import { accountStub } from "../durable/account";
import { BILLING_UNIT, dayOf, milliToUnits } from "../metering";
import { invalid } from "../errors";
import { accountWebhookSecret } from "../webhooks";

const route = createRoute({
  method: "get",
  path: "/usage",
  tags: ["usage"],
  summary: "Your usage by day and task, in megapixel-steps",
  security: [{ ApiKey: [] }],
  request: { query: UsageQuery },
  responses: { 200: { content: { "application/json": { schema: UsageResponse } }, description: "Usage" }, ...authErrors },
});

export const usage = createRouter();

usage.openapi(route, async (c) => {
  const q = c.req.valid("query");
  const p = c.get("principal");
  const now = Date.now();
  const start = q.start_date ?? `${dayOf(now).slice(0, 7)}-01`;
  const end = q.end_date ?? dayOf(now);
  if (start > end) throw invalid("start_date must not be after end_date", "start_date");
  const stub = accountStub(c.env, p.accountId);
  const [rows, snap] = await Promise.all([stub.usage(start, end), stub.snapshot(now)]);
  const limit = p.plan.monthly_units;
  return c.json(
    {
      object: "usage" as const,
      billing_unit: BILLING_UNIT,
      start_date: start,
      end_date: end,
      data: rows.map((r) => ({ date: r.day, task: r.task, requests: r.requests, units: milliToUnits(r.units_milli) })),
      quota: {
        month: snap.month,
        limit_units: limit,
        used_units: milliToUnits(snap.committedMilli),
        reserved_units: milliToUnits(snap.reservedMilli),
        remaining_units: Math.max(0, milliToUnits(limit * 1000 - snap.committedMilli - snap.reservedMilli)),
        concurrency_limit: p.plan.concurrency,
        in_flight: snap.activeSlots,
      },
    },
    200,
  );
});

const secretRoute = createRoute({
  method: "get",
  path: "/webhooks/secret",
  tags: ["jobs"],
  summary: "The secret that signs your job webhooks (Standard Webhooks, whsec_...)",
  security: [{ ApiKey: [] }],
  responses: {
    200: { content: { "application/json": { schema: z.object({ object: z.literal("webhook_secret"), secret: z.string() }) } }, description: "Secret" },
    ...authErrors,
  },
});

usage.openapi(secretRoute, async (c) => {
  const secret = await accountWebhookSecret(c.env.SIGNING_SECRET, c.get("principal").accountId);
  return c.json({ object: "webhook_secret" as const, secret }, 200);
});
