// Which orchestrator the edge tests call. Today: the stand-in (./standin-orchestrator.ts). When the real
// one (gpu-backend, `npm run start:orchestrator`) is ready, swap the one line below to
// `export const startOrchestrator = startRealOrchestrator;` — tests that rely on stand-in-only prompt
// directives check `inject("orchestratorKind")` and skip themselves.
import { spawn } from "node:child_process";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { startStandInOrchestrator } from "./standin-orchestrator";

export interface RunningOrchestrator {
  kind: "stand-in" | "real";
  url: string;
  close(): Promise<void>;
}

export async function startStandIn(token: string): Promise<RunningOrchestrator> {
  const s = await startStandInOrchestrator({ token, name: "primary" });
  return { kind: "stand-in", url: s.url, close: s.close };
}

/** Spawns `npm run start:orchestrator` (port 50051 unless ORCHESTRATOR_PORT) and waits for Health. */
export async function startRealOrchestrator(token: string): Promise<RunningOrchestrator> {
  const port = Number(process.env.ORCHESTRATOR_PORT ?? 50051);
  const child = spawn("npm", ["run", "start:orchestrator"], {
    env: { ...process.env, ORCHESTRATOR_TOKEN: token, ORCHESTRATOR_PORT: String(port) },
    stdio: "inherit",
    detached: false,
  });
  const url = `http://127.0.0.1:${port}`;
  const client = createClient(DimooService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] }));
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await client.health({}, { timeoutMs: 2000 })).ready) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error("the real orchestrator did not become ready within 120 s");
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    kind: "real",
    url,
    close: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export const startOrchestrator = startStandIn; // <- one-line swap: startRealOrchestrator
