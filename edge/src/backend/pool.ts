// Orchestrator pool: where a model call goes. Two routings (ORCHESTRATOR_ROUTING):
// - "probe" (default; small set-ups): the hosts from ORCHESTRATOR_URLS, health-checked by this isolate
//   (Health RPC, cached for a few seconds) and ordered by load; a call goes to the least-loaded ready host.
//   Every isolate probes every host, so probe traffic grows with isolates × hosts (docs/deploy.md).
// - "balanced" (fleets): each URL is a load-balanced origin (Cloudflare Load Balancing over a region's
//   pools, with its own health monitors); the isolate probes nothing and lets the balancer pick the host.
// Either way a call fails over when a host does not take it (connection refused, UNAVAILABLE, e.g. a
// draining host, queue full, wrong token): nothing ran there, so nothing is charged twice. Once a host
// has answered with its first event the stream is never moved (it may already have reached the client).
// None reachable -> 503 with Retry-After, and the caller releases its reservation (nothing charged).
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GenerateEvent, GenerateRequestSchema, HealthResponse, UnderstandEvent, UnderstandRequestSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { TTL } from "../config";
import { unavailable } from "../errors";
import { isFailoverable, retryAfterSeconds, toApiError } from "./errors";
import { createDimooClient, type DimooClient, type FetchFn } from "./transport";

interface HostState {
  url: string;
  ready: boolean;
  /** the last health check timed out: busy or gone, unknown which (tried when nothing else is ready) */
  slow: boolean;
  load: number;
  checkedAt: number;
  downUntil: number;
  inflight?: Promise<void>;
}

/** Per-isolate health memory, shared by every request (and Job objects) in this isolate. */
const hosts = new Map<string, HostState>();
const clients = new Map<string, DimooClient>();

/** The bindings the pool reads (Durable Objects use it too, so it names them instead of importing Env). */
export interface OrchestratorBindings {
  /** comma-separated orchestrator base URLs (Connect protocol) */
  ORCHESTRATOR_URLS: string;
  ORCHESTRATOR_TOKEN?: string;
  /** "probe" (default) or "balanced": each URL is a load balancer that health-checks the hosts itself. */
  ORCHESTRATOR_ROUTING?: string;
}

export type Routing = "probe" | "balanced";

/** Calls a balanced pool makes per request before giving up (each may land on another host). */
export const BALANCED_ATTEMPTS = 3;

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class OrchestratorPool {
  constructor(
    readonly urls: string[],
    private readonly token: string | undefined,
    private readonly fetchFn?: FetchFn,
    readonly routing: Routing = "probe",
  ) {}

  static fromEnv(env: OrchestratorBindings, fetchFn?: FetchFn): OrchestratorPool {
    const urls = (env.ORCHESTRATOR_URLS ?? "")
      .split(",")
      .map((u) => u.trim().replace(/\/+$/, ""))
      .filter(Boolean);
    const routing = (env.ORCHESTRATOR_ROUTING ?? "probe").trim().toLowerCase();
    if (routing !== "probe" && routing !== "balanced") throw new Error(`ORCHESTRATOR_ROUTING must be "probe" or "balanced", got "${env.ORCHESTRATOR_ROUTING}"`);
    return new OrchestratorPool(urls, env.ORCHESTRATOR_TOKEN, fetchFn, routing);
  }

  private client(url: string): DimooClient {
    const k = `${url}|${this.token ?? ""}`;
    let c = clients.get(k);
    if (!c) {
      c = createDimooClient(url, this.token, this.fetchFn);
      if (clients.size > 32) clients.clear();
      clients.set(k, c);
    }
    return c;
  }

  /** Health is remembered per (host, service token): a host that refuses this token is not ready for it. */
  private state(url: string): HostState {
    const k = `${url}|${this.token ?? ""}`;
    let s = hosts.get(k);
    if (!s) {
      s = { url, ready: false, slow: false, load: 0, checkedAt: 0, downUntil: 0 };
      if (hosts.size > 256) hosts.clear();
      hosts.set(k, s);
    }
    return s;
  }

  private async check(s: HostState): Promise<void> {
    s.inflight ??= (async () => {
      try {
        const h: HealthResponse = await this.client(s.url).health({}, { timeoutMs: TTL.healthTimeoutMs });
        s.ready = h.ready;
        s.slow = false;
        s.load = h.queueDepth + h.activeRequests;
        if (h.ready) s.downUntil = 0;
      } catch (e) {
        s.ready = false;
        // A host too busy to answer Health in time is not known to be down: a refused connection or a
        // wrong token fails at once, a timeout does not.
        s.slow = ConnectError.from(e).code === Code.DeadlineExceeded;
      } finally {
        s.checkedAt = Date.now();
        s.inflight = undefined;
      }
    })();
    return s.inflight;
  }

  /**
   * Probe routing: ready hosts, least loaded first; hosts marked down recently go last (still tried if all else fails),
   * and after them hosts whose health check timed out: under load a healthy orchestrator can answer Health
   * late, and refusing every request for the health cache's lifetime because of that would turn a busy host
   * into an outage (a host that is really gone refuses the call at once, which is then the 503).
   * Balanced routing: the balancers in turn, up to BALANCED_ATTEMPTS calls, no probe (a balancer marked
   * down goes last).
   */
  async candidates(now = Date.now()): Promise<string[]> {
    if (this.routing === "balanced") {
      const order = [...this.urls].sort((a, b) => Number(this.state(a).downUntil > now) - Number(this.state(b).downUntil > now));
      const n = Math.max(BALANCED_ATTEMPTS, order.length);
      return Array.from({ length: order.length ? n : 0 }, (_, i) => order[i % order.length]);
    }
    const states = this.urls.map((u) => this.state(u));
    await Promise.all(states.filter((s) => now - s.checkedAt > TTL.healthMs).map((s) => this.check(s)));
    const ready = states.filter((s) => s.ready && s.downUntil <= now).sort((a, b) => a.load - b.load);
    const down = states.filter((s) => s.ready && s.downUntil > now);
    const slow = states.filter((s) => !s.ready && s.slow);
    return [...ready, ...down, ...slow].map((s) => s.url);
  }

  markDown(url: string): void {
    const s = this.state(url);
    s.downUntil = Date.now() + TTL.backendDownMs;
    s.checkedAt = 0; // re-check on next use
  }

  private async *failover<Req, Ev>(call: (c: DimooClient, req: Req, o: CallOptions) => AsyncIterable<Ev>, req: Req, opts: CallOptions): AsyncGenerator<Ev> {
    let last: ConnectError | undefined;
    let attempt = 0;
    for (const url of await this.candidates()) {
      // Through a balancer the next call may reach the same refusing host: give its monitor a moment.
      if (this.routing === "balanced" && attempt++ > 0) await new Promise((r) => setTimeout(r, 50 * attempt));
      let started = false;
      try {
        for await (const ev of call(this.client(url), req, opts)) {
          started = true;
          yield ev;
        }
        return;
      } catch (e) {
        const err = ConnectError.from(e);
        if (opts.signal?.aborted || started || !isFailoverable(err)) throw toApiError(err);
        last = err;
        if (err.code !== 8 /* RESOURCE_EXHAUSTED: busy, not broken */) this.markDown(url);
      }
    }
    throw unavailable(
      last?.code === 8 ? "All model servers are busy; retry shortly." : "No model server is reachable; retry shortly.",
      retryAfterSeconds(last),
    );
  }

  generate(req: MessageInitShape<typeof GenerateRequestSchema>, opts: CallOptions = {}): AsyncGenerator<GenerateEvent> {
    return this.failover((c, r, o) => c.generate(r, o), req, opts);
  }

  understand(req: MessageInitShape<typeof UnderstandRequestSchema>, opts: CallOptions = {}): AsyncGenerator<UnderstandEvent> {
    return this.failover((c, r, o) => c.understand(r, o), req, opts);
  }

  /** Summary for /healthz: no URLs (they are private), only counts. Balanced: one Health call per balancer. */
  async summary(): Promise<{ configured: number; ready: number }> {
    if (this.routing === "balanced") {
      const now = Date.now();
      const states = this.urls.map((u) => this.state(u));
      await Promise.all(states.filter((s) => now - s.checkedAt > TTL.healthMs).map((s) => this.check(s)));
      return { configured: this.urls.length, ready: states.filter((s) => s.ready).length };
    }
    const candidates = await this.candidates();
    return { configured: this.urls.length, ready: candidates.filter((u) => this.state(u).ready && this.state(u).downUntil <= Date.now()).length };
  }
}

/** Test hook: forget health state (each test file starts clean). */
export function resetPoolState(): void {
  hosts.clear();
  clients.clear();
}
