// The local stack the end-to-end sections share (edge overhead, SSE memory, dev-model end to end): started
// once per run with throw-away state and free ports (scripts/start-stack.ts), an API key on a plan with
// limits high enough not to throttle the benchmark, and the resident memory of each part read from /proc.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchKey } from "../../edge/bench/overhead";
import { startStack, type Stack } from "../start-stack";

export interface BenchStack extends Stack {
  /** A key on the "bench" plan: no practical rate, concurrency or quota limit. */
  benchKey: string;
  /** The stack's last log lines (every process), for diagnosing failures. */
  recentLog(): string[];
  /**
   * Waits until the edge sees a ready orchestrator again (GET /healthz answers 200). A section that
   * overloads the stack can leave the edge's pool holding the orchestrator as not ready for a while.
   */
  settle(timeoutMs?: number): Promise<void>;
}

/** Orchestrator queue deep enough for 200 streams held open at once (one tenant may queue half of it). */
const ORCHESTRATOR_ENV = { MAX_QUEUE: "512" };

export async function startBenchStack(log: (line: string) => void): Promise<BenchStack> {
  const dir = await mkdtemp(join(tmpdir(), "dimoo-bench-"));
  const env: NodeJS.ProcessEnv = { ...process.env, ...ORCHESTRATOR_ENV, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn" };
  for (const k of ["TRITON_URL", "ORCHESTRATOR_URLS", "DIMOO_API_KEY"]) delete env[k];
  const lines: string[] = [];
  const stack = await startStack({
    ports: { backend: 0, orchestrator: 0, metrics: 0, edge: 0, inspector: 0 },
    env,
    persistTo: join(dir, "state"),
    log: (l) => void (lines.push(l) > 500 && lines.shift()),
  }).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${lines.slice(-40).join("\n")}`);
  });
  log(`stack up: edge ${stack.edgeUrl}, orchestrator ${stack.orchestratorUrls[0]}`);
  const key = await benchKey(stack.edgeUrl, stack.adminToken).catch(async (e: unknown) => {
    await stack.stop();
    throw e;
  });
  const stop = stack.stop;
  return {
    ...stack,
    benchKey: key,
    recentLog: () => [...lines],
    settle: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await fetch(`${stack.edgeUrl}/healthz`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
        await r?.arrayBuffer();
        if (r?.status === 200) return;
        if (Date.now() > deadline) throw new Error(`the edge saw no ready orchestrator for ${timeoutMs / 1000} s`);
        await new Promise((res) => setTimeout(res, 500));
      }
    },
    stop: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resident memory (bytes) of every process in the process group led by `pgid` (Linux /proc). */
export async function groupRss(pgid: number): Promise<number> {
  let total = 0;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid pgrp ... : comm may hold spaces, so split after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      const status = await readFile(`/proc/${entry}/status`, "utf8");
      const kb = /VmRSS:\s+(\d+) kB/.exec(status);
      if (kb) total += Number(kb[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}
