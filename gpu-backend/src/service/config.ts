// Host limits and scheduler settings, with defaults and the environment variables that override them.
import { parseBuckets, DEFAULT_BUCKETS } from "../scheduler/buckets";
import { MAX_SEQUENCE_LENGTH, MAX_TEXT_SLOTS } from "../scheduler/call-limits";

export interface Limits {
  /** Longest output side in pixels. */
  maxSide: number;
  /** Output pixel budget (width * height). */
  maxPixels: number;
  maxSteps: number;
  maxPromptTokens: number;
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
}

export interface SchedulerSettings {
  maxActive: number;
  maxQueue: number;
  maxBatchRows: number;
  maxBatchTokens: number;
  buckets: readonly number[];
}

export const DEFAULT_LIMITS: Limits = {
  maxSide: 2048,
  // 2048x1024 either way: 64*129+4 = 8260 tokens plus the prompt, inside the 12288-token engine profile.
  maxPixels: 2048 * 1024,
  maxSteps: 256,
  maxPromptTokens: 512,
  maxInputPixels: 4096 * 4096,
  maxInputBytes: 32 * 1024 * 1024,
  maxAnswerTokens: 1024,
  defaultDeadlineMs: 10 * 60_000,
  maxDeadlineMs: 30 * 60_000,
  previewMaxSide: 256,
  maxSequenceTokens: MAX_SEQUENCE_LENGTH,
  maxBlockLength: MAX_TEXT_SLOTS,
};

export const DEFAULT_SCHEDULER: SchedulerSettings = {
  maxActive: 8,
  maxQueue: 32,
  maxBatchRows: 32,
  maxBatchTokens: 1 << 17,
  buckets: DEFAULT_BUCKETS,
};

function num(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const v = env[key];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${key} must be a positive number, got "${v}"`);
  return n;
}

export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): Limits {
  const d = DEFAULT_LIMITS;
  return {
    maxSide: num(env, "MAX_SIDE", d.maxSide),
    maxPixels: num(env, "MAX_PIXELS", d.maxPixels),
    maxSteps: num(env, "MAX_STEPS", d.maxSteps),
    maxPromptTokens: num(env, "MAX_PROMPT_TOKENS", d.maxPromptTokens),
    maxInputPixels: num(env, "MAX_INPUT_PIXELS", d.maxInputPixels),
    maxInputBytes: num(env, "MAX_INPUT_BYTES", d.maxInputBytes),
    maxAnswerTokens: num(env, "MAX_ANSWER_TOKENS", d.maxAnswerTokens),
    defaultDeadlineMs: num(env, "DEFAULT_DEADLINE_MS", d.defaultDeadlineMs),
    maxDeadlineMs: num(env, "MAX_DEADLINE_MS", d.maxDeadlineMs),
    previewMaxSide: num(env, "PREVIEW_MAX_SIDE", d.previewMaxSide),
    maxSequenceTokens: num(env, "MAX_SEQUENCE_TOKENS", d.maxSequenceTokens),
    maxBlockLength: num(env, "MAX_BLOCK_LENGTH", d.maxBlockLength),
  };
}

export function schedulerFromEnv(env: NodeJS.ProcessEnv = process.env): SchedulerSettings {
  const d = DEFAULT_SCHEDULER;
  return {
    maxActive: num(env, "MAX_ACTIVE", d.maxActive),
    maxQueue: num(env, "MAX_QUEUE", d.maxQueue),
    maxBatchRows: num(env, "MAX_BATCH_ROWS", d.maxBatchRows),
    maxBatchTokens: num(env, "MAX_BATCH_TOKENS", d.maxBatchTokens),
    buckets: env.SEQ_BUCKETS ? parseBuckets(env.SEQ_BUCKETS) : d.buckets,
  };
}
