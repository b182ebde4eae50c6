// Assembly: Triton client → engine adapter → step batcher → task families → DimooService server (+ metrics).
import { join } from "node:path";
import { TritonClient } from "../triton";
import { Tokenizer } from "../model/tokenizer";
import { StepBatcher } from "../batcher/step-batcher";
import { TRANSFORMER_MODEL } from "../engine/contract";
import { TritonEngine } from "../engine/triton-engine";
import { ImageWorkerPool, type ImagePoolOptions } from "../image-work/worker-pool";
import { createGeneratePipeline } from "../tasks/generate";
import { DEFAULT_LIMITS, type Limits } from "../tasks/limits";
import { createUnderstandPipeline } from "../tasks/understand";
import { DEFAULT_BATCHER, type BatcherSettings } from "./config";
import { createLogger, type Logger } from "./log";
import { batcherMetricHooks, codeName, OrchestratorMetrics } from "./metrics";
import { startOrchestratorServer, type OrchestratorServer } from "./server";
import { engineReady, warmUp, type WarmUpOptions } from "./warm-up";

export interface OrchestratorOptions {
  /** Triton gRPC address, e.g. "127.0.0.1:8001" or "grpc://host:8001". */
  tritonUrl: string;
  token: string;
  port: number;
  host?: string;
  /** undefined = no metrics server; 0 = any free port. */
  metricsPort?: number;
  metricsHost?: string;
  /** tokenizer.json; default <repository>/dimoo_transformer/tokenizer.json. */
  tokenizerPath?: string;
  modelRepository?: string;
  modelName?: string;
  limits?: Partial<Limits>;
  batcher?: Partial<BatcherSettings>;
  /** Image decode/resample/blend threads and their memory budget (image-work/worker-pool.ts). */
  imagePool?: ImagePoolOptions;
  /** Per transformer call (ms); default 120000. */
  engineTimeoutMs?: number;
  log?: Logger;
  /** Run the first-call requests of every task family before Health says ready; default false (off). */
  warmUp?: WarmUpOptions | false;
}

export interface Orchestrator extends OrchestratorServer {
  batcher: StepBatcher;
  /** The metric values (server.metrics is the HTTP endpoint). */
  stats: OrchestratorMetrics;
  engine: TritonEngine;
  /** Settles when the start-up warm-up is over (at once without one); Health is ready from then on. */
  warmedUp: Promise<void>;
  images: ImageWorkerPool;
}

export async function startOrchestrator(opts: OrchestratorOptions): Promise<Orchestrator> {
  const log = opts.log ?? createLogger();
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const settings: BatcherSettings = { ...DEFAULT_BATCHER, ...opts.batcher };
  const tokenizerPath = opts.tokenizerPath ?? join(opts.modelRepository ?? "model-repository", TRANSFORMER_MODEL, "tokenizer.json");
  const tokenizer = await Tokenizer.fromFile(tokenizerPath);
  const metrics = new OrchestratorMetrics();

  const client = new TritonClient(opts.tritonUrl, {
    channelOptions: {
      // Fail fast when Triton is down instead of waiting for reconnect backoff to grow.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2000,
    },
  });
  const engine = new TritonEngine(client, {
    transformerTimeoutMs: opts.engineTimeoutMs ?? 120_000,
    vqTimeoutMs: opts.engineTimeoutMs ?? 120_000,
    healthTimeoutMs: 2000,
    onCall: (model, ms, ok) => metrics.engineSeconds.observe(ms / 1000, { model, ok: String(ok) }),
  });
  const hooks = batcherMetricHooks(metrics);
  const batcher = new StepBatcher({
    runner: engine,
    maxActive: settings.maxActive,
    maxCachedActive: settings.maxCachedActive,
    maxQueue: settings.maxQueue,
    maxBatchRows: settings.maxBatchRows,
    maxBatchTokens: settings.maxBatchTokens,
    buckets: settings.buckets,
    onTick: (s) => {
      hooks.onTick(s);
      log.debug("step", { batch: s.batchSize, rows: s.rows, length: s.length, engineMs: +s.engineMs.toFixed(2), orchestratorMs: +s.orchestratorMs.toFixed(2) });
    },
    onJobError: (requestId, err) => log.debug("job left", { requestId, code: codeName(err.code) }),
  });
  // A repository without the stateful model serves every request uncached; Health looks for it again.
  await engine.detectCachedModel();
  const mlCache = () => engine.cached !== undefined;
  const images = new ImageWorkerPool(opts.imagePool);
  const deps = { tokenizer, vq: engine, limits, mlCache, images };
  let warming = opts.warmUp !== undefined && opts.warmUp !== false;
  const server = await startOrchestratorServer(
    {
      token: opts.token,
      limits,
      batcher,
      generate: createGeneratePipeline(deps),
      understand: createUnderstandPipeline(deps),
      health: engine,
      metrics,
      log,
      modelName: opts.modelName ?? "lumina-dimoo",
      mlCache,
      serving: () => !warming,
    },
    { port: opts.port, host: opts.host, metricsPort: opts.metricsPort, metricsHost: opts.metricsHost },
  );
  log.info("orchestrator listening", { url: server.url, metrics: server.metrics?.url, triton: opts.tritonUrl, mlCache: mlCache(), ...settings, buckets: settings.buckets.length });
  // In the background, so the process handles signals meanwhile; Health keeps callers away until it ends.
  const stopWarmUp = new AbortController();
  const warmedUp = !warming
    ? Promise.resolve()
    : (async () => {
        if (!(await engineReady(engine, stopWarmUp.signal))) return log.warn("warm-up skipped: the engine did not become ready");
        await engine.detectCachedModel(stopWarmUp.signal);
        const r = await warmUp(server.url, opts.token, log, opts.warmUp || {});
        log.info("warmed up", { ms: Math.round(r.ms), failed: r.failed, mlCache: mlCache() });
      })()
        .catch((e) => log.warn("warm-up stopped", { error: e instanceof Error ? e.message : String(e) }))
        .finally(() => (warming = false));
  return {
    ...server,
    batcher,
    stats: metrics,
    engine,
    warmedUp,
    images,
    close: async () => {
      stopWarmUp.abort();
      await server.close();
      client.close();
      await images.close();
    },
  };
}
