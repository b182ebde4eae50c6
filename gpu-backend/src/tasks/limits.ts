// What the host accepts: output sizes, steps, prompt and answer lengths, input sizes, deadlines, and the
// longest token row the engine's profiles take. Validation of every task family checks against these.
import { MAX_SEQUENCE_LENGTH, MAX_TEXT_SLOTS } from "../engine/call-limits";
import { TRANSFORMER_CACHED_LIMITS } from "../engine/profiles";

export interface Limits {
  /** Longest output side in pixels. */
  maxSide: number;
  /** Output pixel budget (width * height). */
  maxPixels: number;
  maxSteps: number;
  maxPromptTokens: number;
  /** Prompt or question length in characters, checked before tokenizing (a bound on the tokenizer's work). */
  maxPromptChars: number;
  /** Decoded input image limit (width * height). */
  maxInputPixels: number;
  /** Encoded input image limit in bytes. */
  maxInputBytes: number;
  maxAnswerTokens: number;
  /** Deadline when the request and the caller give none, and the cap on any deadline. */
  defaultDeadlineMs: number;
  maxDeadlineMs: number;
  /** Longest side of progress previews. */
  previewMaxSide: number;
  /** Longest token row (prompt + images + answer region); the engine profiles' maximum. */
  maxSequenceTokens: number;
  /** Largest understanding block (text target slots per step). */
  maxBlockLength: number;
  /** Longest token row the stateful model (ML-Cache) takes. */
  maxCachedSequenceTokens: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxSide: 2048,
  // 2048x1024 either way: 64*129+4 = 8260 tokens plus the prompt, inside the 12288-token engine profile.
  maxPixels: 2048 * 1024,
  maxSteps: 256,
  maxPromptTokens: 512,
  // Far above what 512 tokens take in any script, far below what stalls the tokenizer.
  maxPromptChars: 16_384,
  maxInputPixels: 4096 * 4096,
  maxInputBytes: 32 * 1024 * 1024,
  maxAnswerTokens: 1024,
  defaultDeadlineMs: 10 * 60_000,
  maxDeadlineMs: 30 * 60_000,
  previewMaxSide: 256,
  maxSequenceTokens: MAX_SEQUENCE_LENGTH,
  maxBlockLength: MAX_TEXT_SLOTS,
  maxCachedSequenceTokens: TRANSFORMER_CACHED_LIMITS.maxLen,
};
