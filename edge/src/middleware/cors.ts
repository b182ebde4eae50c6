// CORS for a bearer-token API (no cookies): any origin by default, or the CORS_ORIGINS allow-list. The
// rate-limit, request-id, idempotency and job headers are exposed so browser clients can read them. The
// middleware is built once; only the allowed origin depends on the deployment's binding.
import type { Context } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../env";

const EXPOSED = [
  "x-request-id",
  "x-dimoo-job-id",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "ratelimit",
  "ratelimit-policy",
  "retry-after",
  "retry-after-ms",
  "idempotent-replayed",
  "location",
];

// CORS_ORIGINS is fixed per deployment, so the last parse is reused.
let parsed: { config: string; origins: string[] | "*" } | undefined;

function allowedOrigin(config: string, origin: string): string | null {
  if (parsed?.config !== config) {
    const list = config.split(",").map((s) => s.trim());
    parsed = { config, origins: list.includes("*") ? "*" : list };
  }
  if (parsed.origins === "*") return "*";
  return parsed.origins.includes(origin) ? origin : null;
}

export const corsPolicy = cors({
  origin: (origin, c: Context<AppEnv>) => allowedOrigin(c.env.CORS_ORIGINS ?? "*", origin),
  allowHeaders: ["authorization", "content-type", "idempotency-key", "last-event-id", "x-request-id", "openai-beta", "x-stainless-*"],
  allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  exposeHeaders: EXPOSED,
  maxAge: 600,
});
