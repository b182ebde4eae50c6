// Draining a GPU host under load loses no request: one embedded backend, two orchestrator processes behind
// the `wrangler dev` edge (probe routing), a steady stream of generations from several clients, and a
// SIGTERM to one orchestrator while it is generating. Every request must succeed: the drained host finishes
// what it holds (its /readyz turns 503 at once), refuses new work with UNAVAILABLE, the edge retries those
// on the other host, and the process exits 0.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { start as startBackend } from "../../gpu-backend/src/embedded/server";
import { startStack, type Stack } from "../../scripts/start-stack";
import { startOrchestratorProcess, type OrchestratorProcess } from "./support/orchestrator-process";

const TOKEN = "drain-test-orchestrator-token";
let backend: { url: string; close(): Promise<void> } | undefined;
let hosts: OrchestratorProcess[] = [];
let stack: Stack | undefined;
let dir: string | undefined;
const stackLog: string[] = [];

beforeAll(async () => {
  backend = await startBackend({ repository: "model-repository", port: 0, host: "127.0.0.1" });
  hosts = await Promise.all([0, 1].map(() => startOrchestratorProcess({ tritonUrl: backend!.url, token: TOKEN, env: { DRAIN_GRACE_MS: "90000" } })));
  dir = await mkdtemp(join(tmpdir(), "dimoo-drain-"));
  const env: NodeJS.ProcessEnv = { ...process.env, ORCHESTRATOR_URLS: hosts.map((h) => h.url).join(","), ORCHESTRATOR_TOKEN: TOKEN };
  for (const k of ["TRITON_URL", "DIMOO_API_KEY", "ADMIN_TOKEN", "SIGNING_SECRET"]) delete env[k];
  stack = await startStack({
    ports: { backend: 0, orchestrator: 0, metrics: 0, edge: 0, inspector: 0 },
    env,
    persistTo: join(dir, "state"),
    log: (l) => stackLog.push(l),
    timeoutMs: 170_000,
  });
}, 240_000);

afterAll(async () => {
  for (const h of hosts) if (h.proc.exitCode === null) h.kill("SIGKILL");
  await stack?.stop();
  await backend?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const metric = async (h: OrchestratorProcess, name: string) => {
  const text = await (await fetch(`${h.metricsUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
};

describe("draining one of two orchestrators under load", () => {
  it("loses no request: the drained host finishes its work, new work goes to the other, it exits 0", async () => {
    const { edgeUrl, apiKey } = stack!;
    const results: { status: number; body: string }[] = [];
    let stopLoad = false;
    const client = async (c: number) => {
      for (let i = 0; !stopLoad; i++) {
        const res = await fetch(`${edgeUrl}/v1/images/generations`, {
          method: "POST",
          headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "x-request-id": `drain-${c}-${i}` },
          body: JSON.stringify({ prompt: `drain test ${c} ${i}`, size: "128x128", steps: 12 }),
        });
        const body = await res.text();
        results.push({ status: res.status, body: res.status === 200 ? "" : body });
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    const [drained, other] = hosts;
    try {
      // Wait until the host to drain is generating, then stop it the way Kubernetes does.
      const until = Date.now() + 60_000;
      while ((await metric(drained, "dimoo_orchestrator_active_requests")) < 1) {
        if (Date.now() > until) throw new Error("the first host never got a request");
        await new Promise((r) => setTimeout(r, 20));
      }
      drained.kill("SIGTERM");
      // Not ready at once (or already gone, if its last request ended in that instant).
      const readyz = await fetch(`${drained.metricsUrl}/readyz`).then((r) => r.status, () => "closed");
      expect([503, "closed"]).toContain(readyz);
      const code = await drained.exited;
      expect(code).toBe(0);
      // Keep the load on the remaining host a little longer.
      const served = results.length;
      while (results.length < served + 6) await new Promise((r) => setTimeout(r, 50));
    } finally {
      stopLoad = true;
      await Promise.all(clients);
    }

    if (process.env.E2E_VERBOSE) process.stdout.write(drained.lines.join("\n") + "\n---other---\n" + other.lines.join("\n") + "\n");
    const failed = results.filter((r) => r.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    const [report] = drained.records("drained");
    expect(report).toMatchObject({ cancelled: 0, unsent: 0 });
    expect(report.held as number).toBeGreaterThan(0);
    // What the drained host held when SIGTERM came was finished there, not cancelled.
    const draining = drained.records("draining")[0];
    const finishedAfter = drained.records("request finished").filter((r) => (r.ts as string) >= (draining.ts as string));
    expect(finishedAfter.length).toBeGreaterThanOrEqual(report.held as number);
    // Requests that reached it while draining were refused at admission (and retried elsewhere by the edge).
    const refused = drained.records("request failed").filter((r) => r.code === "UNAVAILABLE").length;
    expect(other.records("request finished").length).toBeGreaterThan(0);
    expect(other.proc.exitCode).toBeNull();
    process.stdout.write(
      `[drain] ${results.length} requests, all 200; drained host held ${report.held}, finished them in ${report.ms} ms, refused ${refused} at admission\n`,
    );
  }, 300_000);
});
