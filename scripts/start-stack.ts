// `npm start`: the whole local stack on the embedded default. It builds the dev models if needed, starts the
// embedded Triton-compatible backend (8001), the orchestrator (50051) and the edge (`wrangler dev`, 8787)
// with local D1/Durable Objects/R2/Queues, applies the D1 migrations, registers an API key and prints how to
// call it. Ctrl-C stops every process. Each part can be pointed elsewhere through environment variables
// (README, "Configuration"):
//
//   TRITON_URL          use this Triton (host:port) instead of starting the embedded backend
//   ORCHESTRATOR_URLS   use these orchestrators (comma-separated) instead of starting one
//   BACKEND_PORT, ORCHESTRATOR_PORT, METRICS_PORT, EDGE_PORT   (8001, 50051, 9464, 8787; 0 = any free port)
//   INSPECTOR_PORT      wrangler's DevTools inspector (default 9229, or any free port when that is taken)
//   ORCHESTRATOR_HOST   where the local orchestrator listens (default 127.0.0.1)
//   DIMOO_API_KEY       register this key (dmo_live_…/dmo_test_…) instead of creating one
//   ADMIN_TOKEN, ORCHESTRATOR_TOKEN, SIGNING_SECRET   otherwise generated once and kept in .wrangler/dimoo-local
//   ALLOW_PRIVATE_URLS  default true locally (image_url / webhook_url may point at localhost)
//   DIMOO_STATE_DIR     local state (default .wrangler: wrangler's state/ and our dimoo-local/)
//
// `startStack()` is the same thing as a function (end-to-end tests, scripts/bench.ts): free ports, a
// throw-away state directory, logs to a callback, and `stop()`.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { existsSync, rmSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureDevModels } from "../gpu-backend/src/cli/build-dev-models";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const HOST = "127.0.0.1";
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

export interface StackPorts {
  backend: number;
  orchestrator: number;
  metrics: number;
  edge: number;
  /** wrangler's DevTools inspector */
  inspector: number;
}

export interface StackOptions {
  /** 0 = any free port. Defaults: BACKEND_PORT, ORCHESTRATOR_PORT, METRICS_PORT, EDGE_PORT, INSPECTOR_PORT or 8001, 50051, 9464, 8787, 9229. */
  ports?: Partial<StackPorts>;
  /** Configuration (TRITON_URL, ORCHESTRATOR_URLS, DIMOO_API_KEY, tokens, ALLOW_PRIVATE_URLS) and the children's environment; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** wrangler's local D1/DO/R2/Queue state (`--persist-to`); default .wrangler/state (shared with `npm run start:edge`). */
  persistTo?: string;
  /** Keep generated secrets and the created API key here between runs; unset = fresh ones, never written. */
  secretsDir?: string;
  /** Also load .dev.vars (our values win); default false. */
  useDevVars?: boolean;
  /** Extra Worker vars (e.g. KEY_CACHE_SECONDS). */
  vars?: Record<string, string>;
  /** Every log line of every process, prefixed with its name; default: dropped. */
  log?: (line: string) => void;
  /** A process of the stack exited by itself after start-up (not through stop()). */
  onExit?: (name: string, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Aborting stops the stack (also during start-up, which then rejects). */
  signal?: AbortSignal;
  /** Start-up limit; default 300 s (the first run builds the dev models). */
  timeoutMs?: number;
}

export interface Stack {
  edgeUrl: string;
  apiKey: string;
  adminToken: string;
  signingSecret: string;
  /** The orchestrators the edge calls. */
  orchestratorUrls: string[];
  /** Set when this stack started the orchestrator. */
  orchestratorToken?: string;
  /** Triton gRPC address (host:port) the orchestrator uses, when this stack started it. */
  tritonUrl?: string;
  metricsUrl?: string;
  ports: StackPorts;
  /** Process id of each long-running part (backend, orchestrator, edge), each the leader of its own process group. */
  pids: Record<string, number>;
  /** Stops every process (SIGTERM, then SIGKILL after 5 s) and removes temporary files. Idempotent. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

const portFree = (port: number) =>
  new Promise<boolean>((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, HOST, () => srv.close(() => res(true)));
  });

async function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const srv = createServer();
    srv.once("error", (e: NodeJS.ErrnoException) =>
      rej(new Error(e.code === "EADDRINUSE" ? `port ${port} (${what}) is in use: is another stack running? Set ${envName} to use another port.` : `port ${port} (${what}): ${e.message}`)),
    );
    srv.listen(port, HOST, () => srv.close(() => res()));
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port (the backend's gRPC port is open once its models are loaded). */
function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect({ port, host: HOST });
    socket.once("connect", () => (socket.destroy(), res(true)));
    socket.once("error", () => (socket.destroy(), res(false)));
  });
}

/**
 * Preloaded into every long-running child: fd 3 is a pipe from this launcher; when it closes (the launcher
 * died without stop(): kill -9, a closed terminal, a supervisor's SIGKILL) the child stops its whole process
 * group gracefully, so no backend, orchestrator or workerd is left holding the ports.
 */
const LIFELINE = `data:text/javascript,${encodeURIComponent(`
import { Socket } from "node:net";
// only in the process we spawned: its own children (wrangler's) may inherit the flag, not the variable
if (process.env.DIMOO_LIFELINE_FD === "3") {
  delete process.env.DIMOO_LIFELINE_FD;
  try {
    const line = new Socket({ fd: 3, readable: true, writable: false });
    line.unref();
    line.on("error", () => {});
    line.on("close", () => { try { process.kill(-process.pid, "SIGTERM"); } catch { process.kill(process.pid, "SIGTERM"); } });
    line.resume();
  } catch {}
}
`)}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
}

export class StackRunner {
  private readonly children: Child[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: (line: string) => void;
  private stopping: Promise<void> | undefined;
  private started = false;
  private failure: ((e: Error) => void) | undefined;
  private readonly failed: Promise<never>;
  /** Files removed by stop() (or on exit). */
  private readonly cleanup: string[] = [];
  private readonly onProcessExit = () => {
    this.killAll("SIGKILL");
    for (const file of this.cleanup) rmSync(file, { force: true });
  };

  constructor(private readonly opts: StackOptions) {
    this.env = opts.env ?? process.env;
    this.log = opts.log ?? (() => {});
    this.failed = new Promise<never>((_, rej) => (this.failure = rej));
    this.failed.catch(() => {});
    // Last resort if our own process exits without stop(): no orphans, no secrets left in /tmp (synchronous,
    // so it runs on exit()).
    process.on("exit", this.onProcessExit);
  }

  private spawn(name: string, args: string[], extraEnv: Record<string, string> = {}, oneShot = false): Child {
    if (this.stopping) throw new Error("stopped");
    const proc = spawn(process.execPath, oneShot ? args : ["--import", LIFELINE, ...args], {
      cwd: ROOT,
      env: { ...this.env, ...extraEnv, ...(oneShot ? {} : { DIMOO_LIFELINE_FD: "3" }) },
      stdio: oneShot ? ["ignore", "pipe", "pipe"] : ["ignore", "pipe", "pipe", "pipe"],
      detached: true, // its own process group: stop() signals the whole tree, Ctrl-C reaches us alone
    });
    (proc.stdio[3] as { unref?: () => void } | null)?.unref?.(); // our end of the lifeline must not keep us alive
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on("line", (l) => l.trim() && this.log(`[${name}] ${l}`));
    }
    const exited = new Promise<void>((res) => {
      proc.on("exit", (code, signal) => {
        if (!this.stopping && !oneShot) {
          const msg = `${name} exited (${signal ?? `code ${code}`})`;
          this.log(`[start] ${msg}`);
          if (this.started) this.opts.onExit?.(name, code, signal);
          else this.failure?.(new Error(msg));
        }
        res();
      });
      proc.on("error", (e) => {
        this.failure?.(new Error(`${name}: ${e.message}`));
        res();
      });
    });
    const child = { name, proc, exited };
    this.children.push(child);
    return child;
  }

  private async runOnce(name: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> {
    const child = this.spawn(name, args, extraEnv, true);
    await Promise.race([child.exited, this.failed]);
    if (child.proc.exitCode !== 0 && !this.stopping) throw new Error(`${name} failed (${child.proc.signalCode ?? `code ${child.proc.exitCode}`})`);
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const c of this.children) {
      if (c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid) {
        try {
          process.kill(-c.proc.pid, signal);
        } catch {
          /* already gone */
        }
      }
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.failure?.(new Error("stopped"));
      this.killAll("SIGTERM");
      const all = Promise.all(this.children.map((c) => c.exited));
      const graceful = await Promise.race([all.then(() => true), sleep(5000).then(() => false)]);
      if (!graceful) {
        this.killAll("SIGKILL");
        await Promise.race([all, sleep(2000)]);
      }
      // Grandchildren (workerd under wrangler) share their parent's process group: wait for the group to
      // empty, and kill what is left of it.
      const groupAlive = (pid: number) => {
        try {
          process.kill(-pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const groups = this.children.map((c) => c.proc.pid).filter((p): p is number => !!p);
      for (let i = 0; i < 30 && groups.some(groupAlive); i++) await sleep(100);
      for (const pid of groups.filter(groupAlive)) try { process.kill(-pid, "SIGKILL"); } catch { /* gone */ }
      process.off("exit", this.onProcessExit);
      for (const file of this.cleanup) await rm(file, { force: true });
    })();
    return this.stopping;
  }

  private async waitFor(what: string, probe: () => Promise<boolean>, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if (this.stopping) throw new Error("stopped");
      // a probe that throws is "not yet"; a process of the stack exiting ends the wait at once
      if (await Promise.race([probe().catch(() => false), this.failed])) return;
      await Promise.race([sleep(300), this.failed]);
    }
    throw new Error(`${what} did not become ready within ${Math.round((this.opts.timeoutMs ?? 300_000) / 1000)} s`);
  }

  private async secret(envName: string, file: string): Promise<string> {
    if (this.env[envName]) return this.env[envName]!;
    const dir = this.opts.secretsDir;
    if (dir && existsSync(join(dir, file))) return (await readFile(join(dir, file), "utf8")).trim();
    const value = randomBytes(24).toString("base64url");
    if (dir) await writeFile(join(dir, file), value, { mode: 0o600 });
    return value;
  }

  async start(): Promise<Stack> {
    const { opts, env } = this;
    const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
    opts.signal?.addEventListener("abort", () => void this.stop(), { once: true });
    if (opts.signal?.aborted) throw new Error("aborted");

    const wanted: StackPorts = {
      backend: opts.ports?.backend ?? Number(env.BACKEND_PORT ?? 8001),
      orchestrator: opts.ports?.orchestrator ?? Number(env.ORCHESTRATOR_PORT ?? 50051),
      metrics: opts.ports?.metrics ?? Number(env.METRICS_PORT ?? 9464),
      edge: opts.ports?.edge ?? Number(env.EDGE_PORT ?? 8787),
      inspector: opts.ports?.inspector ?? Number(env.INSPECTOR_PORT ?? 9229),
    };
    const ports = { ...wanted };
    // the DevTools inspector is a convenience: unless asked for explicitly, any free port will do
    if (opts.ports?.inspector === undefined && !env.INSPECTOR_PORT && !(await portFree(ports.inspector))) ports.inspector = 0;
    for (const k of Object.keys(ports) as (keyof StackPorts)[]) if (!ports[k]) ports[k] = await freePort();

    let tritonUrl = env.TRITON_URL || undefined;
    const externalOrchestrators = env.ORCHESTRATOR_URLS?.split(",").map((s) => s.trim()).filter(Boolean);
    const checks: [number, string, string][] = [[ports.edge, "edge", "EDGE_PORT"], [ports.inspector, "wrangler inspector", "INSPECTOR_PORT"]];
    if (!externalOrchestrators?.length) checks.push([ports.orchestrator, "orchestrator", "ORCHESTRATOR_PORT"], [ports.metrics, "orchestrator metrics", "METRICS_PORT"]);
    if (!externalOrchestrators?.length && !tritonUrl) checks.push([ports.backend, "embedded backend", "BACKEND_PORT"]);
    for (const [port, what, envName] of checks) await assertPortFree(port, what, envName);

    if (opts.secretsDir) await mkdir(opts.secretsDir, { recursive: true });
    const adminToken = await this.secret("ADMIN_TOKEN", "admin-token");
    const orchestratorToken = await this.secret("ORCHESTRATOR_TOKEN", "orchestrator-token");
    const signingSecret = await this.secret("SIGNING_SECRET", "signing-secret");
    const persistTo = resolve(ROOT, opts.persistTo ?? join(".wrangler", "state"));

    // 1. backend and orchestrator (unless pointed elsewhere)
    let orchestratorUrls = externalOrchestrators;
    let orchestratorReady: Promise<void> = Promise.resolve();
    if (!orchestratorUrls?.length) {
      if (!tritonUrl) {
        this.log("[start] building the dev models if needed");
        await ensureDevModels({ log: (m) => this.log(`[models] ${m}`) });
        this.spawn("backend", ["--import", "tsx", "gpu-backend/src/cli/start-backend.ts", "--repository", "model-repository", "--port", String(ports.backend), "--host", HOST]);
        tritonUrl = `${HOST}:${ports.backend}`;
      }
      this.spawn("orchestrator", ["--import", "tsx", "gpu-backend/src/cli/start-orchestrator.ts"], {
        TRITON_URL: tritonUrl,
        ORCHESTRATOR_PORT: String(ports.orchestrator),
        ORCHESTRATOR_HOST: env.ORCHESTRATOR_HOST ?? HOST,
        METRICS_PORT: String(ports.metrics),
        ORCHESTRATOR_TOKEN: orchestratorToken,
      });
      const url = `http://${HOST}:${ports.orchestrator}`;
      orchestratorUrls = [url];
      const backendPort = env.TRITON_URL ? undefined : ports.backend;
      orchestratorReady = (backendPort ? this.waitFor("the embedded backend", () => canConnect(backendPort), deadline) : Promise.resolve()).then(() => this.waitFor(
        "the orchestrator",
        async () => {
          const res = await fetch(`${url}/dimoo.v1.DimooService/Health`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${orchestratorToken}` },
            body: "{}",
            signal: AbortSignal.timeout(3000),
          });
          return res.ok && ((await res.json()) as { ready?: boolean }).ready === true;
        },
        deadline,
      )).then(() => this.log(`[start] orchestrator ready on ${url} (Triton at ${tritonUrl})`));
      orchestratorReady.catch(() => {});
    }

    // 2. meanwhile the edge: migrations, then wrangler dev. Secrets go in a private env file (not argv, which
    //    any local user can read in `ps`).
    // The edge reads nothing from `Request.cf`, and wrangler's download of it (workers.cloudflare.com)
    // prints an ENOTFOUND stack trace on every start without internet: use its placeholder instead.
    const wranglerEnv = { CI: "true", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: this.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false" };
    await this.runOnce("migrate", [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], wranglerEnv);
    // next to the other secrets (or in the state directory), never in a shared temp dir
    const varsDir = opts.secretsDir ?? persistTo;
    await mkdir(varsDir, { recursive: true, mode: 0o700 });
    if (this.stopping) throw new Error("stopped");
    const vars: Record<string, string> = {
      ORCHESTRATOR_URLS: orchestratorUrls.join(","),
      ORCHESTRATOR_TOKEN: orchestratorToken,
      ADMIN_TOKEN: adminToken,
      SIGNING_SECRET: signingSecret,
      ALLOW_PRIVATE_URLS: env.ALLOW_PRIVATE_URLS ?? "true",
      ...opts.vars,
    };
    for (const [k, v] of Object.entries(vars)) if (/[\r\n"]/.test(v)) throw new Error(`${k} must not contain quotes or newlines`);
    const varsFile = join(varsDir, "edge.env");
    this.cleanup.push(varsFile);
    await writeFile(varsFile, Object.entries(vars).map(([k, v]) => `${k}="${v}"\n`).join(""), { mode: 0o600 });
    const envFiles = [...(opts.useDevVars && existsSync(join(ROOT, ".dev.vars")) ? [join(ROOT, ".dev.vars")] : []), varsFile];
    this.spawn(
      "edge",
      [
        WRANGLER, "dev", "--ip", HOST, "--port", String(ports.edge), "--inspector-port", String(ports.inspector),
        "--persist-to", persistTo, ...envFiles.flatMap((f) => ["--env-file", f]), "--show-interactive-dev-session=false",
      ],
      wranglerEnv,
    );
    const edgeUrl = `http://${HOST}:${ports.edge}`;
    await orchestratorReady;
    // ready = the edge answers and sees at least one ready orchestrator
    await this.waitFor("the edge", async () => (await fetch(`${edgeUrl}/healthz`, { signal: AbortSignal.timeout(5000) })).status === 200, deadline);
    this.log(`[start] edge ready on ${edgeUrl}`);

    const apiKey = await this.registerKey(edgeUrl, adminToken);
    this.started = true;
    return {
      edgeUrl,
      apiKey,
      adminToken,
      signingSecret,
      orchestratorUrls,
      orchestratorToken: externalOrchestrators?.length ? undefined : orchestratorToken,
      tritonUrl: externalOrchestrators?.length ? undefined : tritonUrl,
      metricsUrl: externalOrchestrators?.length ? undefined : `http://${HOST}:${ports.metrics}/metrics`,
      ports,
      pids: Object.fromEntries(this.children.filter((c) => c.proc.exitCode === null && c.proc.pid).map((c) => [c.name, c.proc.pid!])),
      stop: () => this.stop(),
    };
  }

  private async registerKey(edge: string, adminToken: string): Promise<string> {
    const keyFile = this.opts.secretsDir ? join(this.opts.secretsDir, "api-key") : undefined;
    const fromEnv = this.env.DIMOO_API_KEY;
    const wanted = fromEnv ?? (keyFile && existsSync(keyFile) ? (await readFile(keyFile, "utf8")).trim() : undefined);
    const res = await fetch(`${edge}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ account_id: "local", name: "npm start", plan: "dev", ...(wanted ? { key: wanted } : {}) }),
    });
    if (res.status === 409 && wanted) return wanted; // registered by an earlier run
    if (!res.ok) throw new Error(`registering the API key failed: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { key: string };
    if (keyFile && !fromEnv) await writeFile(keyFile, body.key, { mode: 0o600 });
    return body.key;
  }
}

/** Starts backend, orchestrator and edge; resolves once a generation can go through the edge. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const runner = new StackRunner(opts);
  try {
    return await runner.start();
  } catch (e) {
    await runner.stop();
    throw e;
  }
}

// ---- CLI: npm start ----

async function main(): Promise<void> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  let exiting = 0;
  const shutdown = async (code: number) => {
    // Ctrl-C reaches us twice at once (from the terminal and relayed by npm/tsx); a second one a moment
    // later means "don't wait" (the exit hook still kills every child).
    if (exiting) {
      if (Date.now() - exiting > 1500) process.exit(code);
      return;
    }
    exiting = Date.now();
    out("[start] stopping…");
    await runner.stop();
    process.exit(code);
  };
  const stateRoot = resolve(ROOT, process.env.DIMOO_STATE_DIR ?? ".wrangler");
  const runner = new StackRunner({
    env: process.env,
    persistTo: join(stateRoot, "state"),
    secretsDir: join(stateRoot, "dimoo-local"),
    useDevVars: true,
    log: out,
    onExit: (name) => {
      out(`[start] ${name} stopped unexpectedly; stopping the stack`);
      void shutdown(1);
    },
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(0));
  let stack: Stack;
  try {
    stack = await runner.start();
  } catch (e) {
    if (exiting) return; // Ctrl-C during start-up: shutdown() is stopping everything
    process.stderr.write(`[start] ${e instanceof Error ? e.message : String(e)}\n`);
    await shutdown(1);
    return;
  }
  const { edgeUrl: edge, apiKey, metricsUrl } = stack;
  out(`
  Lumina-DiMOO is running (dev models: tiny and random, images are noise).
    Playground  ${edge}/
    API         ${edge}/v1   (OpenAPI: ${edge}/openapi.json)
    API key     ${apiKey}${metricsUrl ? `\n    Metrics     ${metricsUrl}` : ""}

  curl ${edge}/v1/images/generations \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\
    -d '{"prompt":"a red fox in the snow","size":"256x256","steps":16}'

  Ctrl-C stops everything.
`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) void main();
