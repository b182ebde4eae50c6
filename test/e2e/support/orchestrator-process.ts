// An orchestrator as its own process (`start-orchestrator.ts` under tsx), the way a GPU host runs it, so a
// test can send it a real SIGTERM and watch it drain and exit. Logs are kept in memory.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { freePort, ROOT } from "../../../scripts/start-stack";

export interface OrchestratorProcess {
  url: string;
  metricsUrl: string;
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Structured log records (the JSON lines) whose msg is `msg`. */
  records(msg: string): Record<string, unknown>[];
  kill(signal?: NodeJS.Signals): void;
}

export async function startOrchestratorProcess(opts: { tritonUrl: string; token: string; env?: Record<string, string> }): Promise<OrchestratorProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const proc = spawn(process.execPath, ["--import", "tsx", "gpu-backend/src/cli/start-orchestrator.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      TRITON_URL: opts.tritonUrl,
      ORCHESTRATOR_TOKEN: opts.token,
      ORCHESTRATOR_PORT: String(port),
      ORCHESTRATOR_HOST: "127.0.0.1",
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: "info",
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  for (const s of [proc.stdout!, proc.stderr!]) createInterface({ input: s }).on("line", (l) => lines.push(l));
  const exited = new Promise<number | string>((res) => proc.on("exit", (code, signal) => res(code ?? signal ?? "unknown")));
  const url = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`orchestrator exited at start:\n${lines.slice(-20).join("\n")}`);
    const ok = await fetch(`${metricsUrl}/readyz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`orchestrator not ready:\n${lines.slice(-20).join("\n")}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const records = (msg: string) =>
    lines.flatMap((l) => {
      try {
        const r = JSON.parse(l) as Record<string, unknown>;
        return r.msg === msg ? [r] : [];
      } catch {
        return [];
      }
    });
  return { url, metricsUrl, proc, lines, exited, records, kill: (signal = "SIGTERM") => proc.kill(signal) };
}
