// Admin API guard: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. Without an
// ADMIN_TOKEN secret the admin API is disabled (503), never open. Wrong tokens are throttled per client
// address (auth-throttle.ts).
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { timingSafeEqualStr } from "../lib/crypto";
import { failedAuth, refuseThrottled } from "./auth-throttle";

export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) throw new ApiError(503, "service_unavailable", "The admin API is disabled (no ADMIN_TOKEN secret).", "admin_disabled");
  refuseThrottled(c);
  const m = /^Bearer[ \t]+(\S+)$/i.exec(c.req.header("authorization") ?? "");
  if (!m || !(await timingSafeEqualStr(m[1], token))) {
    throw await failedAuth(c, new ApiError(401, "authentication_error", "Invalid admin token.", "invalid_admin_token", null, { "www-authenticate": 'Bearer realm="dimoo-admin"' }));
  }
  await next();
});
