// Test support: the three client flavours of one orchestrator URL, and stream helpers.
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { DimooService } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { join } from "node:path";
import net from "node:net";
import { start as startEmbedded, type EmbeddedBackend } from "../../../gpu-backend/src/embedded/server";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { startOrchestrator, type Orchestrator, type OrchestratorOptions } from "../../../gpu-backend/src/service/orchestrator";
import { silentLogger } from "../../../gpu-backend/src/service/log";

export type Flavour = "grpc" | "grpc-web" | "connect";
export const FLAVOURS: Flavour[] = ["grpc", "grpc-web", "connect"];

export function transportFor(flavour: Flavour, baseUrl: string): Transport {
  switch (flavour) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1" });
  }
}

export function clientFor(flavour: Flavour, baseUrl: string): Client<typeof DimooService> {
  return createClient(DimooService, transportFor(flavour, baseUrl));
}

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Runs `fn` and returns the error it throws (fails if it does not). */
export async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}

// ---- a real stack: the embedded backend with the dev models + the orchestrator, in this process ----------

export const TOKEN = "integration-token";

export async function startBackend(): Promise<EmbeddedBackend> {
  return startEmbedded({ repository: DEV_MODEL_REPOSITORY, port: 0, host: "127.0.0.1" });
}

export async function startOrch(tritonUrl: string, extra: Partial<OrchestratorOptions> = {}): Promise<Orchestrator> {
  return startOrchestrator({
    tritonUrl,
    token: TOKEN,
    port: 0,
    host: "127.0.0.1",
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    tokenizerPath: join(DEV_MODEL_REPOSITORY, "dimoo_transformer", "tokenizer.json"),
    modelName: "lumina-dimoo-dev",
    log: silentLogger,
    ...extra,
  });
}

/** The embedded backend and an orchestrator on it, started for one test file. */
export interface DevStack {
  backend: EmbeddedBackend;
  orch: Orchestrator;
  close(): Promise<void>;
}

export async function startDevStack(): Promise<DevStack> {
  const backend = await startBackend();
  // The dev model runs on CPU: keep calls small (long rows batched together thrash memory).
  const orch = await startOrch(backend.url, { batcher: { maxBatchTokens: 8192 } });
  return {
    backend,
    orch,
    async close() {
      await orch.close();
      await backend.close();
    },
  };
}

/** A TCP port nobody listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}
