// Standard Webhooks (standardwebhooks.com): headers webhook-id, webhook-timestamp, webhook-signature =
// "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>". Each account has its own `whsec_` secret, derived
// from SIGNING_SECRET (nothing extra to store; GET /v1/webhooks/secret shows it). webhook-id stays the same
// across retries of one delivery, so receivers can dedupe. Every delivery attempt checks the URL against
// the outbound URL policy again (lib/url-policy.ts: the policy may have changed since the job was created)
// and never follows a redirect.
import { fromBase64, toBase64, utf8 } from "./lib/encoding";
import { hmacSha256, timingSafeEqualStr } from "./lib/crypto";
import { ApiError } from "./errors";
import { checkUrl, isRedirect, type UrlPolicy } from "./lib/url-policy";

export const WEBHOOK_TOLERANCE_S = 300;

export async function accountWebhookSecret(signingSecret: string | undefined, accountId: string): Promise<string> {
  if (!signingSecret) throw new ApiError(500, "server_error", "Webhooks are not configured (no SIGNING_SECRET).", "signing_secret_missing");
  return `whsec_${toBase64(await hmacSha256(signingSecret, `webhook-secret\n${accountId}`))}`;
}

const secretBytes = (whsec: string) => fromBase64(whsec.startsWith("whsec_") ? whsec.slice(6) : whsec);

export async function signWebhook(whsec: string, id: string, timestampS: number, body: string): Promise<string> {
  return `v1,${toBase64(await hmacSha256(secretBytes(whsec), `${id}.${timestampS}.${body}`))}`;
}

/** Receiver side (used by tests and documented for customers). */
export async function verifyWebhook(whsec: string, headers: Headers, body: string, nowS = Math.floor(Date.now() / 1000)): Promise<boolean> {
  const id = headers.get("webhook-id");
  const ts = Number(headers.get("webhook-timestamp"));
  const sigs = (headers.get("webhook-signature") ?? "").split(" ");
  if (!id || !Number.isFinite(ts) || Math.abs(nowS - ts) > WEBHOOK_TOLERANCE_S) return false;
  const expected = await signWebhook(whsec, id, ts, body);
  for (const s of sigs) if (await timingSafeEqualStr(s, expected)) return true;
  return false;
}

export interface Delivery {
  ok: boolean;
  status: number;
  error?: string;
  /** the URL policy refused the URL: retrying cannot help */
  refused?: boolean;
}

export async function deliverWebhook(url: string, whsec: string, id: string, payload: unknown, policy: UrlPolicy, fetchFn: typeof fetch = fetch): Promise<Delivery> {
  const verdict = checkUrl(url, policy);
  if (!verdict.ok) return { ok: false, status: 0, error: `webhook_url ${verdict.reason}`, refused: true };
  const body = JSON.stringify(payload);
  const ts = Math.floor(Date.now() / 1000);
  try {
    const res = await fetchFn(verdict.url, {
      method: "POST",
      redirect: "manual",
      headers: {
        "content-type": "application/json",
        "user-agent": "dimoo-edge-webhooks/1",
        "webhook-id": id,
        "webhook-timestamp": String(ts),
        "webhook-signature": await signWebhook(whsec, id, ts, body),
      },
      body: utf8.encode(body),
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (isRedirect(res)) return { ok: false, status: res.status, error: "redirects are not followed" };
    return { ok: res.status >= 200 && res.status < 300, status: res.status };
  } catch (e) {
    return { ok: false, status: 0, error: String(e) };
  }
}
