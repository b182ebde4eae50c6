// A small Prometheus registry (text exposition format 0.0.4) and the orchestrator's metrics, served on
// their own HTTP port. No dependency: counters, gauges and histograms with labels are all we need.
import http from "node:http";
import type { AddressInfo } from "node:net";

type Labels = Record<string, string>;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",") + "}";
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join("\n");
  }
}

export class Gauge implements Metric {
  private values = new Map<string, number>();
  private collector?: () => number;
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  /** Reads the value at scrape time. */
  collect(fn: () => number): this {
    this.collector = fn;
    return this;
  }
  get(labels?: Labels): number {
    if (this.collector && !labels) return this.collector();
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    if (this.collector) lines.push(`${this.name} ${this.collector()}`);
    else if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join("\n");
  }
}

export class Histogram implements Metric {
  private series = new Map<string, { counts: number[]; sum: number; count: number; labels?: Labels }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  observe(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0, labels };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  count(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }
  sum(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.sum ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      for (let i = 0; i < this.buckets.length; i++) {
        lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: String(this.buckets[i]) })} ${s.counts[i]}`);
      }
      lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelKey(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelKey(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export class Registry {
  private metrics: Metric[] = [];
  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join("\n") + "\n";
  }
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH = [1, 2, 4, 8, 16, 32, 64];

/** The orchestrator's metrics. Prefix `dimoo_orchestrator_`. */
export class OrchestratorMetrics {
  readonly registry = new Registry();
  readonly queueDepth = this.registry.add(new Gauge("dimoo_orchestrator_queue_depth", "Requests waiting for a slot."));
  readonly activeRequests = this.registry.add(new Gauge("dimoo_orchestrator_active_requests", "Requests in the running batch."));
  readonly draining = this.registry.add(new Gauge("dimoo_orchestrator_draining", "1 while the host drains (admits nothing new), else 0."));
  readonly batchSize = this.registry.add(new Histogram("dimoo_orchestrator_batch_size", "Requests per transformer call.", BATCH));
  readonly batchRows = this.registry.add(new Histogram("dimoo_orchestrator_batch_rows", "Branch rows per transformer call.", BATCH));
  readonly stepSeconds = this.registry.add(
    new Histogram("dimoo_orchestrator_step_seconds", "Wall time of one batched step, split by part (engine = inside Triton, orchestrator = the rest).", SECONDS),
  );
  readonly engineSeconds = this.registry.add(new Histogram("dimoo_orchestrator_engine_call_seconds", "Triton call time by model.", SECONDS));
  readonly tokens = this.registry.add(new Counter("dimoo_orchestrator_transformer_tokens_total", "Sequence tokens through the transformer."));
  readonly requests = this.registry.add(new Counter("dimoo_orchestrator_requests_total", "Finished RPCs by method and code."));
  readonly errors = this.registry.add(new Counter("dimoo_orchestrator_errors_total", "Failed RPCs by gRPC code."));
  readonly requestSeconds = this.registry.add(
    new Histogram("dimoo_orchestrator_request_seconds", "End-to-end request time by method.", [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]),
  );
  // Memory, read at scrape time: what a leak (requests that leave something behind) shows up in.
  readonly residentMemory = this.registry.add(new Gauge("process_resident_memory_bytes", "Resident set size of the orchestrator process.").collect(() => process.memoryUsage.rss()));
  readonly heapUsed = this.registry.add(new Gauge("dimoo_orchestrator_heap_used_bytes", "V8 heap in use (after the last collection, plus what was allocated since).").collect(() => process.memoryUsage().heapUsed));
}

export interface MetricsServer {
  port: number;
  /** The address it listens on. */
  host: string;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics, /healthz (liveness: the process answers) and /readyz (200 only while `ready()` says
 * so: engine loaded and not draining; 503 otherwise) on its own port. These are what a Kubernetes probe or a
 * load balancer's monitor can call without the service token. No auth, so loopback unless told otherwise.
 */
export async function startMetricsServer(registry: Registry, port: number, host = "127.0.0.1", ready?: () => Promise<boolean>): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/readyz") {
      const answer = (ok: boolean) => {
        res.writeHead(ok ? 200 : 503, { "content-type": "text/plain", "cache-control": "no-store" });
        res.end(ok ? "ready\n" : "not ready\n");
      };
      if (!ready) answer(true);
      else ready().then(answer, () => answer(false));
    } else if (req.method === "GET" && path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(registry.render());
    } else if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const { port: actual, address } = server.address() as AddressInfo;
  return {
    port: actual,
    host: address,
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

const GRPC_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The canonical gRPC name of a status code (0 = OK), as used in metric labels and logs. */
export function codeName(code: number): string {
  return GRPC_NAMES[code] ?? String(code);
}

/** Step batcher hooks that feed the step metrics. */
export function batcherMetricHooks(m: OrchestratorMetrics) {
  return {
    onTick(s: { batchSize: number; rows: number; tokens: number; engineMs: number; orchestratorMs: number }) {
      m.batchSize.observe(s.batchSize);
      m.batchRows.observe(s.rows);
      m.stepSeconds.observe(s.engineMs / 1000, { part: "engine" });
      m.stepSeconds.observe(s.orchestratorMs / 1000, { part: "orchestrator" });
      m.tokens.inc(undefined, s.tokens);
    },
  };
}
