// API key authentication: `Authorization: Bearer dmo_live_...`. The format and checksum are checked offline
// (malformed keys never reach D1), then the SHA-256 digest is looked up; unknown and revoked keys get the
// same answer. Sets c.var.principal. Never logs the key. Failed attempts are throttled per client address
// (auth-throttle.ts); a missing key is not a guess and is not counted.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { checkKeyFormat, keyDigest } from "../keys";
import { findKeyByDigest } from "../keystore";
import { failedAuth, refuseThrottled } from "./auth-throttle";

const unauthorized = (message: string, code: string) =>
  new ApiError(401, "authentication_error", message, code, null, { "www-authenticate": 'Bearer realm="dimoo"' });

export const requireApiKey = createMiddleware<AppEnv>(async (c, next) => {
  refuseThrottled(c);
  const header = c.req.header("authorization");
  if (!header) throw unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", "missing_api_key");
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m) throw await failedAuth(c, unauthorized("Malformed Authorization header; expected 'Bearer <key>'.", "invalid_api_key"));
  const key = m[1];
  const format = checkKeyFormat(key);
  if (!format.ok) throw await failedAuth(c, unauthorized(`Malformed API key (${format.reason === "checksum" ? "checksum mismatch" : "expected dmo_live_... or dmo_test_..."}).`, "invalid_api_key"));
  const rec = await findKeyByDigest(c.env, await keyDigest(key));
  if (!rec || rec.revoked_at !== null) throw await failedAuth(c, unauthorized(`Incorrect API key provided: ${key.slice(0, 13)}***.`, "invalid_api_key"));
  c.set("principal", { keyId: rec.id, accountId: rec.account_id, mode: rec.mode, plan: rec.plan });
  await next();
});
