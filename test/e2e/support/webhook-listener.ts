// A local webhook listener on 127.0.0.1 for end-to-end tests: records every delivery attempt (raw body and
// headers), answers 500 to the first `failFirst` attempts of a path, 204 afterwards; `waitFor` resolves when
// a path has been delivered successfully. Plus a Standard Webhooks verifier written from the spec
// (node:crypto), independent of the edge's own code.
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  at: number;
}

export interface WebhookListener {
  url: string;
  deliveries: Delivery[];
  /** Answer 500 to the first n attempts on this path. */
  failFirst(path: string, n: number): void;
  /** The first successful delivery on this path. */
  waitFor(path: string, timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export async function startWebhookListener(): Promise<WebhookListener> {
  const deliveries: Delivery[] = [];
  const failures = new Map<string, number>();
  const waiters: { path: string; resolve: (d: Delivery) => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://listener").pathname;
      const left = failures.get(path) ?? 0;
      const status = req.method !== "POST" ? 405 : left > 0 ? 500 : 204;
      if (left > 0) failures.set(path, left - 1);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const d = { path, headers, body: Buffer.concat(chunks).toString("utf8"), status, at: Date.now() };
      deliveries.push(d);
      res.writeHead(status).end();
      if (status === 204) for (const w of waiters.filter((w) => w.path === path)) w.resolve(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    failFirst: (path, n) => void failures.set(path, n),
    waitFor: (path, timeoutMs = 60_000) => {
      const done = deliveries.find((d) => d.path === path && d.status === 204);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no webhook on ${path} within ${timeoutMs} ms (got ${deliveries.length} attempts in all)`)), timeoutMs);
        waiters.push({ path, resolve: (d) => (clearTimeout(timer), resolve(d)) });
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Standard Webhooks (standardwebhooks.com) verification: v1 = base64(HMAC-SHA256(key, "id.timestamp.body")),
 *  key = base64-decoded part of whsec_…; timestamps more than `toleranceS` away are rejected. */
export function verifyStandardWebhook(whsec: string, headers: Record<string, string>, body: string, toleranceS = 300): boolean {
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const sigs = headers["webhook-signature"];
  if (!id || !ts || !sigs || !/^\d+$/.test(ts)) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > toleranceS) return false;
  const key = Buffer.from(whsec.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest();
  return sigs.split(" ").some((s) => {
    const [version, sig] = s.split(",", 2);
    if (version !== "v1" || !sig) return false;
    const got = Buffer.from(sig, "base64");
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
