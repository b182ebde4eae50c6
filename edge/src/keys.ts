// API key format and digests. A key is `dmo_live_` or `dmo_test_` + 32 random base58 characters (~187 bits)
// + a 6-character base58 CRC-32 of everything before it. The prefix makes leaked keys greppable by secret
// scanners, the checksum lets them (and us) reject look-alikes without a database read. Only the SHA-256
// digest (hex) and a display `start` are stored; the key is shown once at creation.
import { crc32 } from "./lib/crc32";
import { base58Fixed, BASE58_ALPHABET, randomBase58, utf8 } from "./lib/encoding";
import { sha256Hex } from "./lib/crypto";

export type KeyMode = "live" | "test";
export const KEY_PREFIX = "dmo_";
const BODY_CHARS = 32;
const CHECKSUM_CHARS = 6;
const B58 = `[${BASE58_ALPHABET}]`;
export const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}(live|test)_(${B58}{${BODY_CHARS}})(${B58}{${CHECKSUM_CHARS}})$`);

const checksum = (head: string) => base58Fixed(crc32(utf8.encode(head)), CHECKSUM_CHARS);

export function generateKey(mode: KeyMode = "live"): string {
  const head = `${KEY_PREFIX}${mode}_${randomBase58(BODY_CHARS)}`;
  return head + checksum(head);
}

export type KeyCheck = { ok: true; mode: KeyMode } | { ok: false; reason: "format" | "checksum" };

/** Offline check: prefix, alphabet, length and checksum. */
export function checkKeyFormat(key: string): KeyCheck {
  const m = KEY_PATTERN.exec(key);
  if (!m) return { ok: false, reason: "format" };
  const head = key.slice(0, key.length - CHECKSUM_CHARS);
  if (checksum(head) !== m[3]) return { ok: false, reason: "checksum" };
  return { ok: true, mode: m[1] as KeyMode };
}

/** What is stored and looked up: hex SHA-256 of the full key string. */
export const keyDigest = (key: string): Promise<string> => sha256Hex(key);

/** What is shown in listings and logs: prefix + first 4 body characters. */
export const keyStart = (key: string): string => key.slice(0, KEY_PREFIX.length + 5 + 4);
