// Edge-wide constants: body limits, defaults the orchestrator applies, TTLs and timeouts. Documented in
// docs/edge.md; change them there too.
export const LIMITS = {
  /** JSON bodies without images (generations, admin) */
  jsonBodyBytes: 1 * 1024 * 1024,
  /** bodies that may carry images (edits, chat with data URLs, jobs) */
  imageBodyBytes: 25 * 1024 * 1024,
  /** one input image */
  imageBytes: 10 * 1024 * 1024,
  /** input images per request */
  maxImages: 4,
  /** remote image_url fetch: size and time caps */
  remoteImageBytes: 10 * 1024 * 1024,
  remoteImageTimeoutMs: 5_000,
  /** one text field (prompt, chat message, text part), in characters */
  promptChars: 8_000,
  /** all the text of a chat request together, in characters */
  chatTextChars: 16_000,
  /** the orchestrator's limit on prompt and question tokens (checked at the edge as a lower bound) */
  promptTokens: 512,
  /** messages in one chat request, and content parts in one message */
  chatMessages: 64,
  contentParts: 16,
  /** chat: the largest answer token budget a request (and a plan) may ask for */
  maxAnswerTokens: 2048,
  maxN: 4,
  minSide: 64,
  maxSide: 2048,
  sideMultiple: 16,
  idempotencyKeyChars: 255,
  /** a request id (a caller's x-request-id is kept up to this length): the orchestrator's limit */
  requestIdChars: 128,
} as const;

export const DEFAULTS = {
  width: 1024,
  height: 1024,
  /** orchestrator default when steps = 0 */
  steps: 64,
  /** understanding: answer budget when max_tokens is absent */
  answerTokens: 256,
  model: "lumina-dimoo",
} as const;

export const TTL = {
  /** verified API keys cached in isolate memory (overridden by KEY_CACHE_SECONDS) */
  keyCacheSeconds: 5,
  /** signed result URLs */
  signedUrlSeconds: 3600,
  /** orchestrator health cached per isolate */
  healthMs: 5_000,
  healthTimeoutMs: 1_500,
  /** a backend marked down is skipped for this long unless nothing else is up */
  backendDownMs: 10_000,
  /**
   * A reservation's lease (overridden by RESERVATION_LEASE_SECONDS): its holder renews it every third of
   * this while the work runs, and the Account alarm releases one that was not renewed in time (its holder died).
   */
  reservationLeaseMs: 60_000,
  /** a streamed answer whose client takes no event for this long is treated as gone (cancelled, settled) */
  streamWriteTimeoutMs: 10_000,
  /** webhook delivery attempts and backoff base */
  webhookAttempts: 5,
  webhookBackoffMs: 2_000,
  /** Retry-After when no orchestrator is reachable */
  noBackendRetryAfterS: 5,
  /** a sync JSON answer waits this long for its outcome (and its status) before streaming its body */
  answerHoldMs: 1_000,
  /** sync request deadline passed to the orchestrator (0 = host default) */
  syncDeadlineMs: 0,
} as const;
