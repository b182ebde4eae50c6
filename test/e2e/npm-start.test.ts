// End to end: the README's `npm start`, as a user runs it. It prints the playground URL, an API key and a
// curl example that works; Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it)
// stops every process and frees every port; a healthy start prints no error or stack trace (on a machine
// without internet too); a second `npm start` works and reuses the same key.
// Ports are free ones and the state lives in a temp dir (DIMOO_STATE_DIR), so a developer's own stack is
// never touched.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT } from "../../scripts/start-stack";

let state: string;
let ports: Record<string, number>;
let running: ChildProcess | undefined;
let output = "";

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), "dimoo-npm-start-"));
  ports = { BACKEND_PORT: await freePort(), ORCHESTRATOR_PORT: await freePort(), METRICS_PORT: await freePort(), EDGE_PORT: await freePort(), INSPECTOR_PORT: await freePort() };
});
afterAll(async () => {
  if (running?.pid && running.exitCode === null && running.signalCode === null) {
    try {
      process.kill(-running.pid, "SIGINT");
    } catch {
      /* gone */
    }
    await exited(running, 15_000).catch(() => {
      try {
        process.kill(-running!.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    });
  }
  // the stack's own processes (their own process groups) go away once they see the SIGINT
  await portsClosed(10_000).catch(() => {});
  await rm(state, { recursive: true, force: true });
});

function npmStart(): ChildProcess {
  output = "";
  const env: NodeJS.ProcessEnv = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), DIMOO_STATE_DIR: state };
  for (const k of ["TRITON_URL", "ORCHESTRATOR_URLS", "DIMOO_API_KEY", "ADMIN_TOKEN", "ORCHESTRATOR_TOKEN", "SIGNING_SECRET"]) delete env[k];
  // its own process group, like a terminal's foreground job
  const child = spawn("npm", ["start"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  running = child;
  return child;
}

async function banner(child: ChildProcess, timeoutMs = 170_000): Promise<{ playground: string; key: string; curlBody: string; curlUrl: string }> {
  const deadline = Date.now() + timeoutMs;
  while (!output.includes("Ctrl-C stops everything")) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`npm start exited (${child.signalCode ?? child.exitCode}):\n${output.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`no banner after ${timeoutMs} ms:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const playground = /Playground\s+(\S+)/.exec(output)![1];
  const key = /API key\s+(\S+)/.exec(output)![1];
  const curlUrl = /curl (\S+)/.exec(output)![1];
  const curlBody = /-d '([^']+)'/.exec(output)![1];
  return { playground, key, curlBody, curlUrl };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`still running after ${timeoutMs} ms`)), timeoutMs);
    child.once("exit", (code) => (clearTimeout(t), res(code)));
  });
}

/** npm exits as soon as the Ctrl-C reaches it (its `sh -c` dies of SIGINT), while the stack is still
 *  shutting down; give that shutdown a moment. */
async function portsClosed(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = [];
    for (const [name, port] of Object.entries(ports)) if (await portOpen(port)) open.push(name);
    if (!open.length) return;
    if (Date.now() > deadline) throw new Error(`still listening after ${timeoutMs} ms: ${open.join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const portOpen = (port: number) =>
  new Promise<boolean>((res) => {
    const s = connect({ port, host: "127.0.0.1" });
    s.once("connect", () => (s.destroy(), res(true)));
    s.once("error", () => res(false));
  });

describe("npm start", () => {
  let firstKey: string;

  it("prints the playground URL, a key and a curl example that works", async () => {
    const child = npmStart();
    const b = await banner(child);
    expect(b.playground).toBe(`http://127.0.0.1:${ports.EDGE_PORT}/`);
    expect(b.key).toMatch(/^dmo_live_[1-9A-HJ-NP-Za-km-z]{38}$/);
    firstKey = b.key;
    // a healthy start prints no error and no stack trace, on a machine without internet too (CI has none)
    expect(output).not.toMatch(/\bError\b|ENOTFOUND|^\S*\s+at \S.*:\d+:\d+\)?$/m);
    const page = await fetch(b.playground);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Lumina-DiMOO playground");
    const res = await fetch(b.curlUrl, { method: "POST", headers: { authorization: `Bearer ${b.key}`, "content-type": "application/json" }, body: b.curlBody });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { b64_json: string }[]; size: string };
    expect(body.size).toBe("256x256");
    expect(Buffer.from(body.data[0].b64_json, "base64").subarray(1, 4).toString()).toBe("PNG");
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(true);
  });

  it("Ctrl-C stops every process and frees every port", async () => {
    const t0 = Date.now();
    process.kill(-running!.pid!, "SIGINT");
    await exited(running!, 20_000); // npm itself ends by the signal (exit code null), as in a terminal
    await portsClosed(10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 500)); // the last log lines of the shutdown
    expect(output).toContain("[start] stopping");
    expect(output).not.toMatch(/stopped unexpectedly|exited \(/);
  });

  it("a second npm start works and reuses the same key", async () => {
    const child = npmStart();
    const b = await banner(child);
    expect(b.key).toBe(firstKey);
    const models = await fetch(`${b.curlUrl.replace(/\/images\/generations$/, "")}/models`, { headers: { authorization: `Bearer ${b.key}` } });
    expect(models.status).toBe(200);
    process.kill(-child.pid!, "SIGINT");
    await exited(child, 20_000);
    await portsClosed(10_000);
  });
});
