// Throttle on failed authentication per client address, so API keys and the admin token cannot be guessed
// at speed. Each failure counts against the Workers Rate Limiting binding AUTH_FAILURES (wrangler.toml:
// per Cloudflare location, eventually consistent, a cheap first shield). Once an address is over its
// budget this isolate refuses every request from it for the binding's period without looking at the
// credentials, right or wrong, so a correct guess cannot be told from a wrong one while throttled. The
// address is CF-Connecting-IP (set by Cloudflare); IPv6 counts per /64, what one subscriber usually holds.
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { ipv6Number } from "../lib/url-policy";

/** The binding's period (wrangler.toml `simple.period`): how long a throttled address stays refused here. */
const PERIOD_S = 60;

/** Addresses over their budget, refused by this isolate until the given time (ms). */
const refused = new Map<string, number>();

export function clientAddress(c: Context): string {
  const ip = c.req.header("cf-connecting-ip") ?? "unknown";
  if (!ip.includes(":")) return ip;
  const n = ipv6Number(ip);
  return n === undefined ? ip : `${(n >> 64n).toString(16)}::/64`;
}

const throttled = (retryS: number) =>
  new ApiError(429, "rate_limit_error", `Too many failed authentication attempts from your address. Retry after ${retryS}s.`, "too_many_failed_auth", null, { "retry-after": String(retryS) });

/** Before any credential is looked at: a 429 for an address this isolate is refusing. */
export function refuseThrottled(c: Context<AppEnv>): void {
  const address = clientAddress(c);
  const until = refused.get(address);
  if (until === undefined) return;
  const left = until - Date.now();
  if (left > 0) throw throttled(Math.ceil(left / 1000));
  refused.delete(address);
}

/** Counts a failed authentication; answers `error` (the 401), or a 429 once the address is over its budget. */
export async function failedAuth(c: Context<AppEnv>, error: ApiError): Promise<ApiError> {
  const limiter = c.env.AUTH_FAILURES;
  if (!limiter) return error;
  const address = clientAddress(c);
  if ((await limiter.limit({ key: address })).success) return error;
  if (refused.size > 10_000) refused.clear();
  refused.set(address, Date.now() + PERIOD_S * 1000);
  return throttled(PERIOD_S);
}
