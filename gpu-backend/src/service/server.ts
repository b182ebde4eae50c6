// The orchestrator's network side: DimooService on one port (native gRPC, gRPC-Web, Connect) behind the
// service-token interceptor, and Prometheus metrics on another.
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { DrainReport } from "../batcher/step-batcher";
import type { GenerateSpec, ImageTask, TextTask, UnderstandSpec } from "../tasks/task";
import { acceptsWork, authInterceptor, dimooRoutes, hostReady, type ServiceDeps } from "./dimoo-service";
import { InflightCalls } from "./inflight-calls";
import { listenDual, type RequestHandler } from "./listener";
import { startMetricsServer, type MetricsServer } from "./metrics";

export interface OrchestratorServerOptions {
  port: number;
  host?: string;
  /** 0 = pick a free port; undefined = no metrics server. */
  metricsPort?: number;
  metricsHost?: string;
  /** Largest accepted request message (images are inline). */
  readMaxBytes?: number;
}

/** The batcher's drain report, plus the calls whose results were still unsent when the grace ended. */
export interface HostDrainReport extends DrainReport {
  unsent: number;
}

export interface OrchestratorServer {
  port: number;
  url: string;
  metrics?: MetricsServer;
  /**
   * Graceful drain: reports not ready, refuses new requests with UNAVAILABLE, lets admitted ones finish
   * within `graceMs`, fails the rest, waits for the engine's sequence ends. The ports stay open (streams in
   * progress, Health, probes) until close().
   */
  drain(graceMs: number): Promise<HostDrainReport>;
  close(): Promise<void>;
}

export async function startOrchestratorServer<GS extends GenerateSpec, GT extends ImageTask, US extends UnderstandSpec, UT extends TextTask>(
  deps: ServiceDeps<GS, GT, US, UT>,
  opts: OrchestratorServerOptions,
): Promise<OrchestratorServer> {
  const inflight = deps.inflight ?? new InflightCalls();
  const handler = connectNodeAdapter({
    routes: dimooRoutes({ ...deps, inflight }),
    interceptors: [authInterceptor(deps.token, deps.metrics)],
    readMaxBytes: opts.readMaxBytes ?? 3 * deps.limits.maxInputBytes + (1 << 20),
  });
  const host = opts.host ?? "0.0.0.0";
  const listener = await listenDual(handler as RequestHandler, { port: opts.port, host });
  deps.metrics.queueDepth.collect(() => deps.batcher.queueDepth);
  deps.metrics.activeRequests.collect(() => deps.batcher.activeCount);
  deps.metrics.draining.collect(() => (deps.batcher.isDraining ? 1 : 0));
  // Ready = what Health says (a host that takes no work is not asked about its models).
  const ready = async () => acceptsWork(deps) && hostReady(deps, await deps.health.models(AbortSignal.timeout(2000)));
  const metrics =
    opts.metricsPort === undefined ? undefined : await startMetricsServer(deps.metrics.registry, opts.metricsPort, opts.metricsHost ?? "127.0.0.1", ready);
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return {
    port: listener.port,
    url: `http://${urlHost}:${listener.port}`,
    metrics,
    drain: async (graceMs) => {
      deps.log.info("draining", { graceMs, calls: inflight.count, queued: deps.batcher.queueDepth, active: deps.batcher.activeCount });
      const t0 = Date.now();
      const report = await deps.batcher.drain(graceMs);
      // Requests that left the batcher are still decoding and sending their result: let them, within the grace.
      const left = Math.max(0, graceMs - (Date.now() - t0));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([inflight.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
      const done = { ...report, unsent: inflight.count, ms: Date.now() - t0 };
      deps.log.info("drained", done);
      return done;
    },
    close: async () => {
      await deps.batcher.close();
      await Promise.all([listener.close(), metrics?.close()]);
    },
  };
}
