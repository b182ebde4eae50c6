// WebCrypto helpers: SHA-256 digests, HMAC-SHA256 and constant-time comparison of secrets.
import { toHex, utf8 } from "./encoding";

export async function sha256(data: string | Uint8Array): Promise<Uint8Array> {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  return toHex(await sha256(data));
}

const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string | Uint8Array): Promise<CryptoKey> {
  const cacheable = typeof secret === "string";
  if (cacheable && keyCache.has(secret)) return keyCache.get(secret)!;
  const raw = typeof secret === "string" ? utf8.encode(secret) : secret;
  const p = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  if (cacheable) {
    if (keyCache.size > 64) keyCache.clear();
    keyCache.set(secret, p);
  }
  return p;
}

export async function hmacSha256(secret: string | Uint8Array, message: string): Promise<Uint8Array> {
  const key = await hmacKey(secret);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(message)));
}

/**
 * Constant-time equality of two strings: both are hashed to 32 bytes first (so lengths leak nothing), then
 * compared with workerd's crypto.subtle.timingSafeEqual when present, else a branch-free loop.
 */
export async function timingSafeEqualStr(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([sha256(a), sha256(b)]);
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (x: ArrayBufferView, y: ArrayBufferView) => boolean };
  if (typeof subtle.timingSafeEqual === "function") return subtle.timingSafeEqual(ha, hb);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= ha[i] ^ hb[i];
  return diff === 0;
}
