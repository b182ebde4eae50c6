// Starts the orchestrator: `npm run start:orchestrator` (tsx gpu-backend/src/cli/start-orchestrator.ts).
//
// Environment:
//   TRITON_URL           Triton gRPC address (host:port). Unset: build the dev models if needed and start
//                        the embedded backend in-process on MODEL_REPOSITORY (a free port on 127.0.0.1).
//   MODEL_REPOSITORY     default ./model-repository (also where tokenizer.json is read: <repo>/dimoo_transformer/)
//   TOKENIZER_PATH       override the tokenizer.json path
//   ORCHESTRATOR_PORT    default 50051 (native gRPC, gRPC-Web and Connect on the same port)
//   ORCHESTRATOR_HOST    default 0.0.0.0
//   METRICS_PORT         default 9464 (Prometheus text at /metrics)
//   METRICS_HOST         default 127.0.0.1: the metrics have no auth; expose them to a scraper on purpose
//   ORCHESTRATOR_TOKEN   service token (Bearer); unset: a random dev token is generated and printed
//   MODEL_NAME           reported by Capabilities; default lumina-dimoo-dev on the embedded backend
//   LOG_LEVEL            debug | info | warn | error (default info)
//   ENGINE_TIMEOUT_MS    per Triton call (default 120000)
//   WARM_UP              on (default) | off | sizes "256x256,1024x1024": one small request of each task family
//                        before Health says ready, so no caller's first call is the slow one (service/warm-up.ts)
//   DRAIN_GRACE_MS       on SIGTERM/SIGINT: how long admitted requests may still run (default 120000)
//   Limits:    MAX_SIDE, MAX_PIXELS, MAX_STEPS, MAX_PROMPT_TOKENS, MAX_PROMPT_CHARS, MAX_INPUT_PIXELS, MAX_INPUT_BYTES,
//              MAX_ANSWER_TOKENS, DEFAULT_DEADLINE_MS, MAX_DEADLINE_MS, PREVIEW_MAX_SIDE,
//              MAX_SEQUENCE_TOKENS, MAX_BLOCK_LENGTH, MAX_CACHED_SEQUENCE_TOKENS
//   Step batcher: MAX_ACTIVE, MAX_CACHED_ACTIVE, MAX_QUEUE, MAX_BATCH_ROWS, MAX_BATCH_TOKENS (default 131072; 8192 on the
//              embedded CPU backend), SEQ_BUCKETS ("256,512,...")
//   Image work:   IMAGE_WORKERS (decode/resample threads; default cores - 1, 1 to 4), IMAGE_BUDGET_BYTES (decoded pixel
//              bytes in flight; default 268435456; an image needing more is refused, others wait)
// Drains on SIGTERM/SIGINT (not ready, admits nothing new, finishes or fails what it holds within
// DRAIN_GRACE_MS, ends Triton sequences), then exits 0. A second signal (1.5 s or more later) stops at once.
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { batcherFromEnv, drainGraceMsFromEnv, imagePoolFromEnv, limitsFromEnv, warmUpFromEnv } from "../service/config";
import { createLogger, type LogLevel } from "../service/log";
import { startOrchestrator } from "../service/orchestrator";

const env = process.env;
const log = createLogger({ level: (env.LOG_LEVEL as LogLevel | undefined) ?? "info", base: { service: "orchestrator" } });

async function main(): Promise<void> {
  const repository = resolve(env.MODEL_REPOSITORY ?? "model-repository");
  let tritonUrl = env.TRITON_URL;
  let embedded: { close(): Promise<void> } | undefined;
  if (!tritonUrl) {
    const { ensureDevModels } = await import("./build-dev-models");
    const { start } = await import("../embedded/server");
    log.info("TRITON_URL unset: starting the embedded backend with the dev models", { repository });
    await ensureDevModels({ root: repository, log: (m) => log.info(m) });
    const backend = await start({ repository, port: 0, host: "127.0.0.1", log: (line) => log.debug(line) });
    embedded = backend;
    tritonUrl = backend.url;
  }
  let token = env.ORCHESTRATOR_TOKEN;
  if (!token) {
    token = `dev-${randomBytes(16).toString("hex")}`;
    // Printed once on stderr for local use; never logged with the structured logs.
    process.stderr.write(`ORCHESTRATOR_TOKEN not set; dev token for this run: ${token}\n`);
  }
  const batcher = batcherFromEnv(env);
  const drainGraceMs = drainGraceMsFromEnv(env);
  // The embedded backend runs the dev model on CPU, where long rows batched together thrash memory.
  if (embedded && !env.MAX_BATCH_TOKENS) batcher.maxBatchTokens = 8192;
  const orch = await startOrchestrator({
    tritonUrl,
    token,
    port: Number(env.ORCHESTRATOR_PORT ?? 50051),
    host: env.ORCHESTRATOR_HOST ?? "0.0.0.0",
    metricsPort: Number(env.METRICS_PORT ?? 9464),
    metricsHost: env.METRICS_HOST ?? "127.0.0.1",
    modelRepository: repository,
    tokenizerPath: env.TOKENIZER_PATH,
    modelName: env.MODEL_NAME ?? (embedded ? "lumina-dimoo-dev" : "lumina-dimoo"),
    limits: limitsFromEnv(env),
    batcher,
    imagePool: imagePoolFromEnv(env),
    engineTimeoutMs: env.ENGINE_TIMEOUT_MS ? Number(env.ENGINE_TIMEOUT_MS) : undefined,
    log,
    warmUp: warmUpFromEnv(env),
  });

  let stopping = 0;
  const stop = async (signal: string) => {
    if (stopping) {
      // Ctrl-C under npm/tsx arrives twice at once (terminal and relay); only a later one means "now".
      if (Date.now() - stopping < 1500) return;
      log.warn("second signal: stopping without waiting for the drain", { signal });
      process.exit(1);
    }
    stopping = Date.now();
    log.info("stopping", { signal });
    await orch.drain(drainGraceMs);
    await orch.close();
    await embedded?.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err) => {
  log.error("failed to start", { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
