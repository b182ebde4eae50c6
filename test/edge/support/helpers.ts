// Helpers for edge tests running inside workerd: calling the Worker (optionally with overridden bindings),
// creating keys through the admin API, tiny PNGs, SSE parsing and the stand-in's call log.
import { env, exports } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import worker from "../../../edge/src/index";
import type { Env } from "../../../edge/src/env";
import { crc32 } from "../../../edge/src/lib/crc32";
import { toBase64 } from "../../../edge/src/lib/encoding";
import type { StandInCall } from "./standin-orchestrator";

export const testEnv = env as unknown as Env;
export const ADMIN = "test-admin-token";
export const BASE = "http://edge.test";

let seq = 0;
export const uniq = (p = "t") => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** Request through the Worker's default export (same module instance as the test). */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(`${BASE}${path}`, init));
}

/** Request with some bindings overridden (e.g. ORCHESTRATOR_URLS). */
export async function callWith(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ...testEnv, ...overrides }, ctx);
  // Read the body first: a streamed handler stays in waitUntil until its stream is consumed.
  const body = [101, 204, 205, 304].includes(res.status) ? null : await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** Direct call of the Worker's fetch handler (no service binding in between): the test holds the very
 *  Request (its signal) and Response (its body stream), as the runtime does for a real client. */
export function direct(path: string, init: RequestInit = {}, overrides: Partial<Env> = {}): Promise<Response> {
  return Promise.resolve(worker.fetch(new Request(`${BASE}${path}`, init) as Request<unknown, IncomingRequestCfProperties>, { ...testEnv, ...overrides }, createExecutionContext()));
}

export const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

export const bearer = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...extra });

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${ADMIN}`);
  if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
  return call(path, { ...init, headers });
}

export interface TestKey {
  key: string;
  id: string;
  account_id: string;
}

export async function createPlan(id: string, p: Partial<{ rpm: number; burst: number; concurrency: number; monthly_units: number; max_pixels: number; max_steps: number; max_answer_tokens: number }>) {
  const res = await admin(`/admin/plans/${id}`, {
    method: "PUT",
    body: JSON.stringify({ name: id, rpm: 1000, burst: 1000, concurrency: 8, monthly_units: 1_000_000, max_pixels: 2048 * 2048, max_steps: 256, ...p }),
  });
  if (res.status !== 200) throw new Error(`plan ${id}: ${res.status} ${await res.text()}`);
}

/** A key on its own account; plan "test-roomy" (generous) unless given. */
export async function createKey(plan = "test-roomy", accountId = uniq("acct")): Promise<TestKey> {
  if (plan === "test-roomy") await createPlan("test-roomy", {});
  const res = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ plan, account_id: accountId.replace(/[^A-Za-z0-9_-]/g, "_") }) });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${await res.text()}`);
  return (await res.json()) as TestKey;
}

/** Minimal RGBA PNG encoder (zlib via CompressionStream). `alpha(x, y)` gives the alpha channel. */
export async function png(width: number, height: number, alpha: (x: number, y: number) => number = () => 255): Promise<Uint8Array> {
  const raw = new Uint8Array((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    for (let x = 0; x < width; x++) {
      const o = y * (width * 4 + 1) + 1 + x * 4;
      raw.set([(x * 7) & 255, (y * 5) & 255, 128, alpha(x, y)], o);
    }
  }
  const z = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  return pngFile(width, height, 6, z);
}

/** A PNG file of 8-bit samples (`colorType` 0 grey, 2 RGB, 6 RGBA) whose IDAT is `zlib` as given, even if it lies. */
export function pngFile(width: number, height: number, colorType: number, zlib: Uint8Array): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, colorType, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", zlib), chunk("IEND", new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const dataUrl = (bytes: Uint8Array, mime = "image/png") => `data:${mime};base64,${toBase64(bytes)}`;

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export function parseSse(text: string): SseEvent[] {
  return text
    .split(/\n\n+/)
    .filter((b) => b.trim())
    .map((block) => {
      const e: SseEvent = { event: "message", data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) e.event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        else if (line.startsWith("id:")) e.id = line.slice(3).trim();
      }
      e.data = data.join("\n");
      return e;
    });
}

export type { StandInCall };

/** Stand-in call log entries whose request id starts with `requestId`. */
export async function standInCalls(requestId: string, url = inject("orchestratorUrl")): Promise<StandInCall[]> {
  const all = (await (await fetch(`${url}/__standin/calls`)).json()) as StandInCall[];
  return all.filter((c) => c.requestId?.startsWith(requestId));
}

export const isStandIn = () => inject("orchestratorKind") === "stand-in";

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const accountStub = (accountId: string) => testEnv.ACCOUNT.get(testEnv.ACCOUNT.idFromName(accountId));
