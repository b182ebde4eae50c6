// One TCP port for native gRPC (HTTP/2 prior knowledge, "h2c"), gRPC-Web and Connect (HTTP/1.1 or h2c).
//
// `http2.createServer({ allowHTTP1: true })` only falls back to HTTP/1.1 on TLS (ALPN) in Node 20; on a
// cleartext port it answers HTTP/1.1 clients with an HTTP/2 SETTINGS frame. So the listener peeks at the
// first bytes of each connection: the HTTP/2 connection preface starts with "PRI * HTTP/2.0", anything
// else is HTTP/1.x. The bytes are put back and the socket is handed to the matching server. Node's http2
// session picks up data already buffered on the socket, so nothing is lost.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface DualListener {
  port: number;
  host: string;
  close(): Promise<void>;
}

export interface DualListenerOptions {
  port: number;
  host?: string;
  /** Idle time before a connection that never sent a byte is dropped. */
  firstByteTimeoutMs?: number;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export async function listenDual(handler: RequestHandler, opts: DualListenerOptions): Promise<DualListener> {
  const host = opts.host ?? "0.0.0.0";
  const h2 = http2.createServer({}, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const h1 = http.createServer(handler as http.RequestListener);
  h1.keepAliveTimeout = 65_000;
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });

  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setNoDelay(true);
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), opts.firstByteTimeoutMs ?? 30_000);
    timer.unref();
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const prefixOfPreface = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      // Undecided while what we have is a strict prefix of the preface (rare: tiny first segments).
      if (prefixOfPreface && head.length < 4) return;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.pause();
      socket.unshift(head);
      if (prefixOfPreface) {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(opts.port, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const port = (tcp.address() as AddressInfo).port;
  return {
    port,
    host,
    close: async () => {
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const s of sessions) s.close();
        h1.closeAllConnections();
        setTimeout(() => {
          for (const s of sessions) s.destroy();
          for (const s of sockets) s.destroy();
        }, 500).unref();
      });
    },
  };
}
