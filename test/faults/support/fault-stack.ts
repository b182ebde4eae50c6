// A whole local stack whose parts can be killed and restarted one by one, for the fault suite: the embedded
// backend (the Triton side) and the orchestrator are spawned here as separate processes, each in its own
// process group on a fixed free port (so a restarted one comes back at the same address), and the edge is
// `wrangler dev` started by scripts/start-stack.ts pointed at that orchestrator, with a throw-away state
// directory. Logs are kept in memory and printed when a test fails (or always with FAULTS_VERBOSE=1).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { freePort, ROOT, startStack, type Stack } from "../../../scripts/start-stack";

const HOST = "127.0.0.1";
export type Part = "backend" | "orchestrator";

export interface FaultStackOptions {
  /** Extra orchestrator environment (MAX_QUEUE, MAX_ACTIVE, …). */
  orchestratorEnv?: Record<string, string>;
  /** Extra Worker vars. */
  vars?: Record<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const canConnect = (port: number) =>
  new Promise<boolean>((res) => {
    const s = connect({ port, host: HOST });
    s.once("connect", () => (s.destroy(), res(true)));
    s.once("error", () => (s.destroy(), res(false)));
  });

export class FaultStack {
  private readonly procs = new Map<Part, ChildProcess>();
  private readonly lines: string[] = [];
  private edge!: Stack;
  private dir = "";
  readonly token = randomBytes(18).toString("base64url");
  ports = { backend: 0, orchestrator: 0, metrics: 0 };

  private constructor(private readonly opts: FaultStackOptions) {}

  static async start(opts: FaultStackOptions = {}): Promise<FaultStack> {
    const s = new FaultStack(opts);
    try {
      await s.boot();
      return s;
    } catch (e) {
      await s.stop();
      throw new Error(`the fault stack did not start: ${e instanceof Error ? e.message : String(e)}\n${s.logTail(60)}`);
    }
  }

  get edgeUrl(): string {
    return this.edge.edgeUrl;
  }
  get adminToken(): string {
    return this.edge.adminToken;
  }
  get apiKey(): string {
    return this.edge.apiKey;
  }
  get orchestratorUrl(): string {
    return `http://${HOST}:${this.ports.orchestrator}`;
  }
  get metricsUrl(): string {
    return `http://${HOST}:${this.ports.metrics}/metrics`;
  }

  log(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 8000) this.lines.splice(0, 2000);
    if (process.env.FAULTS_VERBOSE) process.stdout.write(`${line}\n`);
  }

  logTail(n = 80): string {
    return this.lines.slice(-n).join("\n");
  }

  private async boot(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "dimoo-faults-"));
    this.ports = { backend: await freePort(), orchestrator: await freePort(), metrics: await freePort() };
    const env = { ...process.env, ORCHESTRATOR_URLS: this.orchestratorUrl, ORCHESTRATOR_TOKEN: this.token };
    for (const k of ["TRITON_URL", "DIMOO_API_KEY", "ADMIN_TOKEN", "SIGNING_SECRET", "ALLOW_PRIVATE_URLS"]) delete env[k];
    // the edge boots meanwhile: startStack waits until it sees a ready orchestrator
    const abort = new AbortController();
    const parts = this.startPart("backend").then(() => this.startPart("orchestrator"));
    parts.catch(() => abort.abort());
    const edge = startStack({
      signal: abort.signal,
      ports: { edge: 0, inspector: 0 },
      env,
      persistTo: join(this.dir, "state"),
      vars: this.opts.vars,
      log: (l) => this.log(l),
      timeoutMs: 170_000,
      onExit: (name, code, signal) => this.log(`[faults] ${name} exited unexpectedly (${signal ?? code})`),
    });
    const [, started] = await Promise.allSettled([parts, edge]);
    if (started.status === "fulfilled") this.edge = started.value;
    await parts;
    this.edge = await edge;
  }

  /** Spawns a part (again) on its port and waits until it serves. */
  async startPart(part: Part, timeoutMs = 90_000): Promise<void> {
    if (this.alive(part)) throw new Error(`${part} is already running`);
    const args =
      part === "backend"
        ? ["--import", "tsx", "gpu-backend/src/cli/start-backend.ts", "--repository", "model-repository", "--port", String(this.ports.backend), "--host", HOST]
        : // SIGUSR2 writes a heap snapshot, which runs a full collection first: collectGarbage() below
          ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${join(this.dir, "diag")}`, "--import", "tsx", "gpu-backend/src/cli/start-orchestrator.ts"];
    const env =
      part === "backend"
        ? process.env
        : {
            ...process.env,
            TRITON_URL: `${HOST}:${this.ports.backend}`,
            ORCHESTRATOR_PORT: String(this.ports.orchestrator),
            ORCHESTRATOR_HOST: HOST,
            METRICS_PORT: String(this.ports.metrics),
            ORCHESTRATOR_TOKEN: this.token,
            ...this.opts.orchestratorEnv,
          };
    const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on("line", (l) => l.trim() && this.log(`[${part}] ${l}`));
    proc.on("exit", (code, signal) => this.log(`[faults] ${part} exited (${signal ?? `code ${code}`})`));
    this.procs.set(part, proc);
    const deadline = Date.now() + timeoutMs;
    const ready = part === "backend" ? () => canConnect(this.ports.backend) : () => this.orchestratorReady();
    while (Date.now() < deadline) {
      if (!this.alive(part)) throw new Error(`${part} exited during start-up`);
      if (await ready().catch(() => false)) return;
      await sleep(200);
    }
    throw new Error(`${part} did not become ready within ${timeoutMs / 1000} s`);
  }

  pid(part: Part): number | undefined {
    return this.procs.get(part)?.pid;
  }

  alive(part: Part): boolean {
    const p = this.procs.get(part);
    return !!p && p.exitCode === null && p.signalCode === null;
  }

  /** Kills a part's whole process group (SIGKILL by default: a crash, no graceful shutdown) and waits for it. */
  async kill(part: Part, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.procs.get(part);
    if (!p || !this.alive(part)) return;
    const gone = new Promise<void>((res) => p.once("exit", () => res()));
    try {
      process.kill(-p.pid!, signal);
    } catch {
      /* already gone */
    }
    await Promise.race([gone, sleep(10_000)]);
  }

  /**
   * Makes the orchestrator run a full garbage collection (by asking for a heap snapshot, which collects
   * first), so a heap reading afterwards is live memory, not garbage V8 has not got round to.
   */
  async collectGarbage(timeoutMs = 60_000): Promise<void> {
    const dir = join(this.dir, "diag");
    await mkdir(dir, { recursive: true });
    const before = new Set(await readdir(dir));
    process.kill(this.pid("orchestrator")!, "SIGUSR2");
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    while (Date.now() < deadline) {
      await sleep(500);
      const file = (await readdir(dir)).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
      if (!file) continue;
      const size = (await stat(join(dir, file))).size;
      if (size > 0 && size === last) {
        await rm(join(dir, file), { force: true });
        return;
      }
      last = size;
    }
    throw new Error("the orchestrator wrote no heap snapshot");
  }

  /** The orchestrator's Health RPC (Connect JSON). */
  async health(): Promise<{ ready?: boolean; queueDepth?: number; activeRequests?: number }> {
    const res = await fetch(`${this.orchestratorUrl}/dimoo.v1.DimooService/Health`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
      body: "{}",
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) throw new Error(`health ${res.status}`);
    return (await res.json()) as { ready?: boolean; queueDepth?: number; activeRequests?: number };
  }

  async orchestratorReady(): Promise<boolean> {
    return (await this.health()).ready === true;
  }

  /** A Prometheus gauge or counter of the orchestrator (first sample of that name). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(this.metricsUrl, { signal: AbortSignal.timeout(3000) })).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : NaN;
  }

  async stop(): Promise<void> {
    for (const part of ["orchestrator", "backend"] as Part[]) await this.kill(part, "SIGTERM").catch(() => {});
    for (const part of ["orchestrator", "backend"] as Part[]) await this.kill(part, "SIGKILL").catch(() => {});
    await this.edge?.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** For afterEach: prints the stack's recent logs when the test just failed. */
export function logsOnFailure(stack: FaultStack | undefined, ctx: { task: { name: string; result?: { state?: string } } }, lines = 100): void {
  if (stack && ctx.task.result?.state === "fail") process.stderr.write(`\n--- stack logs around "${ctx.task.name}" ---\n${stack.logTail(lines)}\n`);
}
