// GCRA (generic cell rate algorithm, virtual scheduling) for `limit` requests per `periodMs` with a burst
// of `burst`: the state is one theoretical arrival time (TAT). Pure function; the Account object stores TAT.
export interface GcraResult {
  allowed: boolean;
  tatMs: number;
  limit: number;
  remaining: number;
  /** ms until the bucket is full again (IETF `t`, OpenAI x-ratelimit-reset-requests) */
  resetMs: number;
  /** ms until one more request conforms (0 when allowed) */
  retryAfterMs: number;
}

export function gcra(nowMs: number, tatMs: number, limit: number, periodMs: number, burst: number, cost = 1): GcraResult {
  const t = periodMs / limit; // emission interval
  const capacity = t * burst; // tolerance + one interval
  const newTat = Math.max(tatMs, nowMs) + t * cost;
  const allowed = newTat - nowMs <= capacity;
  const tat = allowed ? newTat : Math.max(tatMs, nowMs);
  const remaining = Math.max(0, Math.floor((capacity - (tat - nowMs)) / t));
  return {
    allowed,
    tatMs: tat,
    limit: burst,
    remaining,
    resetMs: Math.max(0, Math.ceil(tat - nowMs)),
    retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(newTat - capacity - nowMs)),
  };
}
