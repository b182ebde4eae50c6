// Test support: a local HTTP listener that records webhook deliveries (headers + raw body) so tests can
// verify Standard Webhooks signatures. Paths containing /fail-first/ answer 500 to the first attempt.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
}

export async function startWebhookReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const received: ReceivedWebhook[] = [];
  const attempts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/__received") {
      const path = url.searchParams.get("path");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received.filter((r) => !path || r.path === path)));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const n = (attempts.get(url.pathname) ?? 0) + 1;
      attempts.set(url.pathname, n);
      if (url.pathname.includes("/fail-first/") && n === 1) {
        res.writeHead(500).end("try again");
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      received.push({ path: url.pathname, headers, body: Buffer.concat(chunks).toString("utf8"), receivedAt: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
