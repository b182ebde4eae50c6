// Per-account request rate (GCRA in the Account Durable Object). Every authenticated response carries
// OpenAI's x-ratelimit-* headers and the IETF draft's RateLimit / RateLimit-Policy fields; a 429 adds
// Retry-After (seconds) and retry-after-ms, which the OpenAI SDKs honour.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { GcraResult } from "../durable/gcra";
import { accountStub } from "../durable/account";

/** OpenAI style duration: "1s", "6m0s", "250ms". */
export function openAiDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

export function rateHeaders(r: GcraResult, rpm: number): Record<string, string> {
  const t = Math.ceil(r.resetMs / 1000);
  return {
    "x-ratelimit-limit-requests": String(rpm),
    "x-ratelimit-remaining-requests": String(r.remaining),
    "x-ratelimit-reset-requests": openAiDuration(r.resetMs),
    "ratelimit-policy": `"rpm";q=${rpm};w=60`,
    ratelimit: `"rpm";r=${r.remaining};t=${t}`,
  };
}

export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const p = c.get("principal");
  const r = await accountStub(c.env, p.accountId).admit(p.accountId, { rpm: p.plan.rpm, burst: p.plan.burst });
  const headers = rateHeaders(r, p.plan.rpm);
  if (!r.allowed) {
    const retryAfter = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
    throw new ApiError(429, "rate_limit_error", `Rate limit reached: ${p.plan.rpm} requests per minute. Retry after ${retryAfter}s.`, "rate_limit_exceeded", null, {
      ...headers,
      "retry-after": String(retryAfter),
      "retry-after-ms": String(r.retryAfterMs),
    });
  }
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  await next();
});
