// Byte/string encodings used by keys, signatures and image payloads: hex, base64, base64url, base58.
const HEX = "0123456789abcdef";

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const x of b) s += HEX[x >> 4] + HEX[x & 15];
  return s;
}

export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) bin += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(bin);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Bitcoin alphabet: no 0, O, I, l (nothing to misread, double-click selects the whole key). */
export const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** `length` uniformly random base58 characters (rejection sampling, no modulo bias). */
export function randomBase58(length: number): string {
  let out = "";
  while (out.length < length) {
    const buf = crypto.getRandomValues(new Uint8Array(length * 2));
    for (const b of buf) {
      if (b < 232) out += BASE58_ALPHABET[b % 58]; // 232 = 4 * 58
      if (out.length === length) break;
    }
  }
  return out;
}

/** Fixed-width base58 of an unsigned 32-bit number (6 chars: 58^6 > 2^32). */
export function base58Fixed(n: number, width = 6): string {
  let s = "";
  let v = n >>> 0;
  for (let i = 0; i < width; i++) {
    s = BASE58_ALPHABET[v % 58] + s;
    v = Math.floor(v / 58);
  }
  return s;
}

export const utf8 = new TextEncoder();
