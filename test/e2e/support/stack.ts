// The whole stack (embedded backend, orchestrator, `wrangler dev` edge) for an end-to-end test file, started
// with scripts/start-stack.ts's startStack() on free ports with a throw-away wrangler state directory, so it
// never touches a developer's `npm start` (ports, D1, keys). Logs are kept in memory and printed when a test
// fails (or always with E2E_VERBOSE=1).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack, type Stack } from "../../../scripts/start-stack";

export interface TestStack extends Stack {
  /** The last `n` log lines of every process of the stack. */
  logTail(n?: number): string;
}

/** Configuration that would point the stack elsewhere: end-to-end tests always run the local one. */
const OUTSIDE = ["TRITON_URL", "ORCHESTRATOR_URLS", "DIMOO_API_KEY", "ADMIN_TOKEN", "ORCHESTRATOR_TOKEN", "SIGNING_SECRET", "ALLOW_PRIVATE_URLS"];

export async function startTestStack(): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), "dimoo-e2e-"));
  const lines: string[] = [];
  const verbose = !!process.env.E2E_VERBOSE;
  const log = (line: string) => {
    lines.push(line);
    if (lines.length > 5000) lines.splice(0, 1000);
    if (verbose) process.stdout.write(`${line}\n`);
  };
  const logTail = (n = 60) => lines.slice(-n).join("\n");
  const env = { ...process.env };
  for (const k of OUTSIDE) delete env[k];
  try {
    const stack = await startStack({
      ports: { backend: 0, orchestrator: 0, metrics: 0, edge: 0, inspector: 0 },
      env,
      persistTo: join(dir, "state"),
      log,
      timeoutMs: 170_000,
      onExit: (name, code, signal) => log(`[e2e] ${name} exited unexpectedly (${signal ?? code})`),
    });
    return {
      ...stack,
      logTail,
      stop: async () => {
        await stack.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`the stack did not start: ${e instanceof Error ? e.message : String(e)}\n--- last log lines ---\n${logTail(80)}`);
  }
}

/** For afterEach: prints the stack's recent logs when the test just failed. */
export function logsOnFailure(stack: TestStack | undefined, ctx: { task: { name: string; fails?: boolean; result?: { state?: string } } }): void {
  if (stack && ctx.task.result?.state === "fail" && !ctx.task.fails) process.stderr.write(`\n--- stack logs around "${ctx.task.name}" ---\n${stack.logTail(80)}\n`);
}
