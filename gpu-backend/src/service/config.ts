// The host's settings from the environment: the request limits (defaults in tasks/limits.ts), the step
// batcher's settings, the image worker pool's, the start-up warm-up and the drain grace period.
import { parseBuckets, DEFAULT_BUCKETS } from "../batcher/buckets";
import { TRANSFORMER_CACHED_LIMITS } from "../engine/profiles";
import type { ImagePoolOptions } from "../image-work/worker-pool";
import { DEFAULT_LIMITS, type Limits } from "../tasks/limits";
import type { WarmUpOptions } from "./warm-up";

export interface BatcherSettings {
  maxActive: number;
  /** Cached (ML-Cache) requests running at once: the stateful model's sequence slots. */
  maxCachedActive: number;
  maxQueue: number;
  maxBatchRows: number;
  maxBatchTokens: number;
  buckets: readonly number[];
}

export const DEFAULT_BATCHER: BatcherSettings = {
  maxActive: 8,
  maxCachedActive: TRANSFORMER_CACHED_LIMITS.maxSequences,
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
    maxPromptChars: num(env, "MAX_PROMPT_CHARS", d.maxPromptChars),
    maxInputPixels: num(env, "MAX_INPUT_PIXELS", d.maxInputPixels),
    maxInputBytes: num(env, "MAX_INPUT_BYTES", d.maxInputBytes),
    maxAnswerTokens: num(env, "MAX_ANSWER_TOKENS", d.maxAnswerTokens),
    defaultDeadlineMs: num(env, "DEFAULT_DEADLINE_MS", d.defaultDeadlineMs),
    maxDeadlineMs: num(env, "MAX_DEADLINE_MS", d.maxDeadlineMs),
    previewMaxSide: num(env, "PREVIEW_MAX_SIDE", d.previewMaxSide),
    maxSequenceTokens: num(env, "MAX_SEQUENCE_TOKENS", d.maxSequenceTokens),
    maxBlockLength: num(env, "MAX_BLOCK_LENGTH", d.maxBlockLength),
    maxCachedSequenceTokens: num(env, "MAX_CACHED_SEQUENCE_TOKENS", d.maxCachedSequenceTokens),
  };
}

export function batcherFromEnv(env: NodeJS.ProcessEnv = process.env): BatcherSettings {
  const d = DEFAULT_BATCHER;
  return {
    maxActive: num(env, "MAX_ACTIVE", d.maxActive),
    maxCachedActive: num(env, "MAX_CACHED_ACTIVE", d.maxCachedActive),
    maxQueue: num(env, "MAX_QUEUE", d.maxQueue),
    maxBatchRows: num(env, "MAX_BATCH_ROWS", d.maxBatchRows),
    maxBatchTokens: num(env, "MAX_BATCH_TOKENS", d.maxBatchTokens),
    buckets: env.SEQ_BUCKETS ? parseBuckets(env.SEQ_BUCKETS) : d.buckets,
  };
}

/**
 * WARM_UP: "off" skips the start-up warm-up; "on" (the default) warms the default text-to-image sizes;
 * a list such as "256x256,1024x1024" warms those sizes (the other families are always warmed).
 */
export function warmUpFromEnv(env: NodeJS.ProcessEnv = process.env): WarmUpOptions | false {
  const v = (env.WARM_UP ?? "on").trim().toLowerCase();
  if (v === "off" || v === "0" || v === "false") return false;
  if (v === "on" || v === "" || v === "1" || v === "true") return {};
  const sizes = v.split(",").map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m || Number(m[1]) % 16 || Number(m[2]) % 16 || !Number(m[1]) || !Number(m[2])) throw new Error(`WARM_UP must be on, off or sizes like 256x256,512x512 (multiples of 16), got "${env.WARM_UP}"`);
    return [Number(m[1]), Number(m[2])] as const;
  });
  return { sizes };
}

/** IMAGE_WORKERS (threads), IMAGE_BUDGET_BYTES (decoded pixel bytes in flight); unset = the pool's defaults. */
export function imagePoolFromEnv(env: NodeJS.ProcessEnv = process.env): ImagePoolOptions {
  return {
    threads: env.IMAGE_WORKERS ? num(env, "IMAGE_WORKERS", 1) : undefined,
    budgetBytes: env.IMAGE_BUDGET_BYTES ? num(env, "IMAGE_BUDGET_BYTES", 1) : undefined,
  };
}

/**
 * How long a draining host lets admitted requests run before it fails them. Sized for a full batch: at the
 * default 8 slots a 1024² generation shares the GPU with 7 others, roughly 8 × 12-16 s on an H100/H200.
 * Keep Kubernetes' terminationGracePeriodSeconds above it.
 */
export const DEFAULT_DRAIN_GRACE_MS = 120_000;

export function drainGraceMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.DRAIN_GRACE_MS;
  if (v === undefined || v === "") return DEFAULT_DRAIN_GRACE_MS;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`DRAIN_GRACE_MS must be a number of milliseconds >= 0, got "${v}"`);
  return n;
}
