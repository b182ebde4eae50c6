// Expiring, HMAC-signed URLs for stored results, served by the worker itself from R2 (GET /v1/files/...):
// signature = base64url(HMAC-SHA256(SIGNING_SECRET, "GET\n<path>\n<expires>")). No key needed to fetch, so
// images embed cross-origin; the link dies at `expires` (default one hour).
import { hmacSha256, timingSafeEqualStr } from "./lib/crypto";
import { toBase64Url } from "./lib/encoding";
import { ApiError } from "./errors";
import { TTL } from "./config";

export const FILES_PREFIX = "/v1/files/";

const requireSecret = (secret: string | undefined): string => {
  if (!secret) throw new ApiError(500, "server_error", "Result URLs are not configured (no SIGNING_SECRET).", "signing_secret_missing");
  return secret;
};

const payload = (objectKey: string, expires: number) => `GET\n${FILES_PREFIX}${objectKey}\n${expires}`;

export async function signedFileUrl(secret: string | undefined, origin: string, objectKey: string, ttlS: number = TTL.signedUrlSeconds, nowMs = Date.now()): Promise<string> {
  const expires = Math.floor(nowMs / 1000) + ttlS;
  const sig = toBase64Url(await hmacSha256(requireSecret(secret), payload(objectKey, expires)));
  return `${origin}${FILES_PREFIX}${objectKey.split("/").map(encodeURIComponent).join("/")}?expires=${expires}&signature=${sig}`;
}

export type SignatureCheck = "ok" | "expired" | "invalid";

export async function checkSignature(secret: string | undefined, objectKey: string, expires: string | undefined, signature: string | undefined, nowMs = Date.now()): Promise<SignatureCheck> {
  const exp = Number(expires);
  if (!signature || !Number.isInteger(exp)) return "invalid";
  const expected = toBase64Url(await hmacSha256(requireSecret(secret), payload(objectKey, exp)));
  if (!(await timingSafeEqualStr(signature, expected))) return "invalid";
  return exp * 1000 < nowMs ? "expired" : "ok";
}
