// `npm start`: the whole local stack on the embedded default. It builds the dev models if needed, starts the
// embedded Triton-compatible backend (8001), the orchestrator (50051) and the edge (`wrangler dev`, 8787)
// with local D1/Durable Objects/R2/Queues, applies the D1 migrations, registers an API key and prints how to
// call it. Ctrl-C stops every process. Each part can be pointed elsewhere through environment variables
// (README, "Configuration").

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDevModels } from "../gpu-backend/src/cli/build-dev-models";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const BACKEND_PORT = Number(env.BACKEND_PORT ?? 8001);
const ORCHESTRATOR_PORT = Number(env.ORCHESTRATOR_PORT ?? 50051);
const METRICS_PORT = Number(env.METRICS_PORT ?? 9464);
const EDGE_PORT = Number(env.EDGE_PORT ?? 8787);
const HOST = "127.0.0.1";
const stateDir = join(root, ".wrangler", "dimoo-local");
const children: ChildProcess[] = [];

function log(msg: string): void {
  process.stdout.write(`[start] ${msg}\n`);
}

function run(name: string, cmd: string, args: string[], extraEnv: Record<string, string> = {}): ChildProcess {
  const child = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => `[${name}] ${l}\n`)
      .join("");
  child.stdout!.on("data", (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr!.on("data", (c: Buffer) => process.stderr.write(prefix(c)));
  child.on("exit", (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping the stack`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

async function runOnce(cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: "inherit" });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`))));
  });
}

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.pid) try { process.kill(-c.pid, "SIGTERM"); } catch { /* gone */ }
  const deadline = Date.now() + 5000;
  while (children.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) await sleep(100);
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) try { process.kill(-c.pid, "SIGKILL"); } catch { /* gone */ }
  process.exit(code);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (stopping) return;
    try {
      if (await probe()) return;
    } catch {
      /* not up yet */
    }
    await sleep(300);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s`);
}

async function secret(name: string, envName: string): Promise<string> {
  if (env[envName]) return env[envName]!;
  const file = join(stateDir, name);
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const value = randomBytes(24).toString("base64url");
  await writeFile(file, value, { mode: 0o600 });
  return value;
}

async function main(): Promise<void> {
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  await mkdir(stateDir, { recursive: true });
  const adminToken = await secret("admin-token", "ADMIN_TOKEN");
  const orchestratorToken = await secret("orchestrator-token", "ORCHESTRATOR_TOKEN");
  const signingSecret = await secret("signing-secret", "SIGNING_SECRET");

  let tritonUrl = env.TRITON_URL;
  if (!tritonUrl) {
    log("building the dev models if needed");
    await ensureDevModels();
    run("backend", "npx", ["tsx", "gpu-backend/src/cli/start-backend.ts", "--repository", "model-repository", "--port", String(BACKEND_PORT), "--host", HOST]);
    tritonUrl = `${HOST}:${BACKEND_PORT}`;
  }

  const orchestratorUrls = env.ORCHESTRATOR_URLS;
  if (!orchestratorUrls) {
    run("orchestrator", "npx", ["tsx", "gpu-backend/src/cli/start-orchestrator.ts"], {
      TRITON_URL: tritonUrl,
      ORCHESTRATOR_PORT: String(ORCHESTRATOR_PORT),
      METRICS_PORT: String(METRICS_PORT),
      ORCHESTRATOR_TOKEN: orchestratorToken,
    });
    await waitFor("the orchestrator", async () => {
      const res = await fetch(`http://${HOST}:${ORCHESTRATOR_PORT}/dimoo.v1.DimooService/Health`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${orchestratorToken}` },
        body: "{}",
      });
      return res.ok && ((await res.json()) as { ready?: boolean }).ready === true;
    }, 300_000);
    log(`orchestrator ready on ${HOST}:${ORCHESTRATOR_PORT} (Triton at ${tritonUrl})`);
  }

  await runOnce("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local"], { CI: "true" });
  const vars: Record<string, string> = {
    ORCHESTRATOR_URLS: orchestratorUrls ?? `http://${HOST}:${ORCHESTRATOR_PORT}`,
    ORCHESTRATOR_TOKEN: orchestratorToken,
    ADMIN_TOKEN: adminToken,
    SIGNING_SECRET: signingSecret,
    ALLOW_PRIVATE_URLS: env.ALLOW_PRIVATE_URLS ?? "true",
  };
  run("edge", "npx", ["wrangler", "dev", "--ip", HOST, "--port", String(EDGE_PORT), ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])], { CI: "true" });
  const edge = `http://${HOST}:${EDGE_PORT}`;
  await waitFor("the edge", async () => (await fetch(`${edge}/healthz`)).status < 500);

  const apiKey = await registerKey(edge, adminToken);
  process.stdout.write(`
  Lumina-DiMOO is running (dev models: tiny and random, images are noise).
    Playground  ${edge}/
    API         ${edge}/v1   (OpenAPI: ${edge}/openapi.json)
    API key     ${apiKey}
    Metrics     http://${HOST}:${METRICS_PORT}/metrics

  curl ${edge}/v1/images/generations \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\
    -d '{"prompt":"a red fox in the snow","size":"256x256","steps":16}'

  Ctrl-C stops everything.
`);
}

async function registerKey(edge: string, adminToken: string): Promise<string> {
  const keyFile = join(stateDir, "api-key");
  const wanted = env.DIMOO_API_KEY ?? (existsSync(keyFile) ? (await readFile(keyFile, "utf8")).trim() : undefined);
  const res = await fetch(`${edge}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ account_id: "local", name: "npm start", plan: "dev", ...(wanted ? { key: wanted } : {}) }),
  });
  if (res.status === 409 && wanted) return wanted; // registered by an earlier run
  if (!res.ok) throw new Error(`registering the API key failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { key: string };
  if (!env.DIMOO_API_KEY) await writeFile(keyFile, body.key, { mode: 0o600 });
  return body.key;
}

main().catch((err) => {
  process.stderr.write(`[start] ${err instanceof Error ? err.message : String(err)}\n`);
  void stop(1);
});
