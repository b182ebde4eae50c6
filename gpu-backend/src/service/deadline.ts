// A request's absolute deadline: its own field, capped by the caller's transport timeout and the host limits.
import type { Limits } from "../tasks/limits";

/** Absolute deadline from the request field, the caller's own timeout and the host limits. */
export function deadlineAt(requestMs: number, callerMs: number | undefined, limits: Limits, now = Date.now()): number {
  let ms = requestMs > 0 ? requestMs : limits.defaultDeadlineMs;
  // Finish a little before the caller's own timer, so it hears DEADLINE_EXCEEDED from us, not a reset.
  if (callerMs !== undefined && callerMs > 0) ms = Math.min(ms, callerMs - Math.min(100, callerMs * 0.1));
  return now + Math.min(ms, limits.maxDeadlineMs);
}
