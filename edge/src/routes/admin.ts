// Admin API (Bearer ADMIN_TOKEN), a sub-app mounted at /admin with its own body limit and token check:
// create keys (the key is shown once), list and revoke them, change a key's plan, manage plans, read usage
// across accounts (from the queue-fed usage_events table), replay the usage events the queue's dead-letter
// consumer parked, and one account's live quota snapshot.
import { createRoute, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { createRouter } from "../validation";
import { AdminUsageQuery, KeyCreateBody, KeyCreated, KeyInfo, KeyPatchBody, PlanBody, PlanSchema } from "../schemas/admin";
import { ErrorSchema } from "../schemas/common";
import { createKey, getKey, listKeys, listPlans, revokeKey, setKeyPlan, upsertPlan, type KeyRecord } from "../keystore";
import { accountStub } from "../durable/account";
import { dayOf, milliToUnits } from "../metering";
import { LIMITS } from "../config";
import { replayParkedUsage } from "../usage-events";
import { limitBody } from "../middleware/body-limit";
import { requireAdmin } from "../middleware/admin-auth";
import type { Context } from "hono";

const err = (description: string) => ({ content: { "application/json": { schema: ErrorSchema } }, description });
const adminErrors = { 400: err("Validation error"), 401: err("Invalid admin token"), 503: err("Admin API disabled") };
const security = [{ AdminToken: [] }];
const KeyId = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });

const keyInfo = (r: KeyRecord) => ({
  id: r.id,
  object: "api_key" as const,
  start: r.start,
  mode: r.mode,
  account_id: r.account_id,
  name: r.name,
  plan: r.plan.id,
  created_at: Math.floor(r.created_at / 1000),
  revoked_at: r.revoked_at === null ? null : Math.floor(r.revoked_at / 1000),
});

export const admin = createRouter();

admin.use("*", limitBody(LIMITS.jsonBodyBytes), requireAdmin);

admin.openapi(
  createRoute({
    method: "post",
    path: "/keys",
    tags: ["admin"],
    summary: "Create an API key (returned once)",
    security,
    request: { body: { content: { "application/json": { schema: KeyCreateBody } }, required: true } },
    responses: { 201: { content: { "application/json": { schema: KeyCreated } }, description: "Created" }, 409: err("Key already registered"), ...adminErrors },
  }),
  async (c) => {
    const b = c.req.valid("json");
    const { key, record } = await createKey(c.env, { accountId: b.account_id, name: b.name, planId: b.plan, mode: b.mode, key: b.key });
    return c.json({ ...keyInfo(record), key }, 201);
  },
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/keys",
    tags: ["admin"],
    summary: "List keys (never the secret)",
    security,
    request: { query: z.object({ account_id: z.string().optional() }) },
    responses: { 200: { content: { "application/json": { schema: z.object({ object: z.literal("list"), data: z.array(KeyInfo) }) } }, description: "Keys" }, ...adminErrors },
  }),
  async (c) => {
    const { account_id } = c.req.valid("query");
    return c.json({ object: "list" as const, data: (await listKeys(c.env, account_id)).map(keyInfo) }, 200);
  },
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/keys/{id}",
    tags: ["admin"],
    summary: "One key",
    security,
    request: { params: KeyId },
    responses: { 200: { content: { "application/json": { schema: KeyInfo } }, description: "Key" }, 404: err("No such key"), ...adminErrors },
  }),
  async (c) => c.json(keyInfo(await getKey(c.env, c.req.valid("param").id)), 200),
);

admin.openapi(
  createRoute({
    method: "patch",
    path: "/keys/{id}",
    tags: ["admin"],
    summary: "Change a key's plan",
    security,
    request: { params: KeyId, body: { content: { "application/json": { schema: KeyPatchBody } }, required: true } },
    responses: { 200: { content: { "application/json": { schema: KeyInfo } }, description: "Key" }, 404: err("No such key"), ...adminErrors },
  }),
  async (c) => c.json(keyInfo(await setKeyPlan(c.env, c.req.valid("param").id, c.req.valid("json").plan)), 200),
);

const revoke = async (c: Context<AppEnv>, id: string) => c.json(keyInfo(await revokeKey(c.env, id)), 200);

admin.openapi(
  createRoute({
    method: "post",
    path: "/keys/{id}/revoke",
    tags: ["admin"],
    summary: "Revoke a key (effective at once on this isolate, within KEY_CACHE_SECONDS everywhere)",
    security,
    request: { params: KeyId },
    responses: { 200: { content: { "application/json": { schema: KeyInfo } }, description: "Revoked key" }, 404: err("No such key"), ...adminErrors },
  }),
  async (c) => revoke(c, c.req.valid("param").id),
);

admin.openapi(
  createRoute({
    method: "delete",
    path: "/keys/{id}",
    tags: ["admin"],
    summary: "Revoke a key (alias)",
    security,
    request: { params: KeyId },
    responses: { 200: { content: { "application/json": { schema: KeyInfo } }, description: "Revoked key" }, 404: err("No such key"), ...adminErrors },
  }),
  async (c) => revoke(c, c.req.valid("param").id),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/plans",
    tags: ["admin"],
    summary: "List plans",
    security,
    responses: { 200: { content: { "application/json": { schema: z.object({ object: z.literal("list"), data: z.array(PlanSchema) }) } }, description: "Plans" }, ...adminErrors },
  }),
  async (c) => c.json({ object: "list" as const, data: await listPlans(c.env) }, 200),
);

admin.openapi(
  createRoute({
    method: "put",
    path: "/plans/{id}",
    tags: ["admin"],
    summary: "Create or update a plan (keys pick it up within KEY_CACHE_SECONDS)",
    security,
    request: { params: z.object({ id: PlanSchema.shape.id.openapi({ param: { name: "id", in: "path" } }) }), body: { content: { "application/json": { schema: PlanBody } }, required: true } },
    responses: { 200: { content: { "application/json": { schema: PlanSchema } }, description: "Plan" }, ...adminErrors },
  }),
  async (c) => c.json(await upsertPlan(c.env, { id: c.req.valid("param").id, ...c.req.valid("json") }), 200),
);

const UsageRows = z.object({
  object: z.literal("list"),
  data: z.array(z.object({ account_id: z.string(), date: z.string(), task: z.string(), requests: z.number().int(), units: z.number() })),
});

admin.openapi(
  createRoute({
    method: "get",
    path: "/usage",
    tags: ["admin"],
    summary: "Usage across accounts from the billing event stream (eventually consistent: fed by the Queue)",
    security,
    request: { query: AdminUsageQuery },
    responses: { 200: { content: { "application/json": { schema: UsageRows } }, description: "Usage" }, ...adminErrors },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const now = Date.now();
    const start = q.start_date ?? `${dayOf(now).slice(0, 7)}-01`;
    const end = q.end_date ?? dayOf(now);
    const where = ["day >= ?", "day <= ?"];
    const args: unknown[] = [start, end];
    if (q.account_id) {
      where.push("account_id = ?");
      args.push(q.account_id);
    }
    const rows = await c.env.DB.prepare(
      `SELECT account_id, day, task, COUNT(*) AS requests, SUM(units_milli) AS units_milli FROM usage_events WHERE ${where.join(" AND ")} GROUP BY account_id, day, task ORDER BY day, account_id, task`,
    )
      .bind(...args)
      .all<{ account_id: string; day: string; task: string; requests: number; units_milli: number }>();
    return c.json({ object: "list" as const, data: rows.results.map((r) => ({ account_id: r.account_id, date: r.day, task: r.task, requests: r.requests, units: milliToUnits(r.units_milli) })) }, 200);
  },
);

admin.openapi(
  createRoute({
    method: "post",
    path: "/usage/replay",
    tags: ["admin"],
    summary: "Write the usage events parked by the dead-letter consumer to D1 (idempotent per event id)",
    security,
    responses: {
      200: {
        content: {
          "application/json": {
            schema: z.object({ replayed: z.number().int(), already_present: z.number().int(), failed: z.number().int(), malformed: z.number().int() }),
          },
        },
        description: "What the replay did",
      },
      ...adminErrors,
    },
  }),
  async (c) => c.json(await replayParkedUsage(c.env), 200),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/accounts/{id}",
    tags: ["admin"],
    summary: "An account's live quota snapshot (from its Durable Object)",
    security,
    request: { params: KeyId },
    responses: {
      200: {
        content: { "application/json": { schema: z.object({ account_id: z.string(), month: z.string(), used_units: z.number(), reserved_units: z.number(), in_flight: z.number().int(), unsent_events: z.number().int() }) } },
        description: "Snapshot",
      },
      ...adminErrors,
    },
  }),
  async (c) => {
    const id = c.req.valid("param").id;
    const s = await accountStub(c.env, id).snapshot();
    return c.json({ account_id: id, month: s.month, used_units: milliToUnits(s.committedMilli), reserved_units: milliToUnits(s.reservedMilli), in_flight: s.activeSlots, unsent_events: s.outbox }, 200);
  },
);
