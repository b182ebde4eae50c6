// What one transformer call may hold, from the engine's optimization profiles
// (profiles.ts): rows, image requests and text requests for a row length L, and the
// longest L any profile accepts. A call outside them would fail in TensorRT (no profile fits), so the
// step batcher keeps every call inside, and validation refuses requests whose rows are longer than any profile.
import { MAX_TEXT_REQUESTS, MAX_TEXT_TARGETS, maxImageRequests, TRANSFORMER_BUCKETS } from "./profiles";

export interface CallLimits {
  maxRows: number;
  maxImageRequests: number;
  maxTextRequests: number;
}

/** Longest row any engine profile accepts. */
export const MAX_SEQUENCE_LENGTH = Math.max(...TRANSFORMER_BUCKETS.map((b) => b.maxLen));

/** Most text target slots per request (understanding block length). */
export const MAX_TEXT_SLOTS = MAX_TEXT_TARGETS;

/** Limits of the smallest engine profile whose maximum length holds L. */
export function engineCallLimits(length: number): CallLimits {
  const b = TRANSFORMER_BUCKETS.find((x) => x.maxLen >= length) ?? TRANSFORMER_BUCKETS[TRANSFORMER_BUCKETS.length - 1];
  return { maxRows: b.maxRows, maxImageRequests: maxImageRequests(b), maxTextRequests: Math.min(MAX_TEXT_REQUESTS, b.maxRows) };
}
