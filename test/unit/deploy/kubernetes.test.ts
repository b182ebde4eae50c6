// The Kubernetes manifests: the committed YAML is what deploy/kubernetes/synth.ts makes from the typed config,
// every object (as committed) passes its Kubernetes or CRD schema (kubernetes-models' validators, offline),
// and the pieces fit the orchestrator: probes on paths its metrics server serves, a termination grace above
// the drain grace, KEDA queries on metrics it exports, Triton reachable where the orchestrator looks.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Namespace, PersistentVolumeClaim, Service, type IContainer } from "kubernetes-models/v1";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { fleet } from "../../../deploy/fleet.config";
import { OUT_DIR, synthesize } from "../../../deploy/kubernetes/synth";
import { OrchestratorMetrics, startMetricsServer } from "../../../gpu-backend/src/service/metrics";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  Namespace, PersistentVolumeClaim, Job, Deployment, Service, PodDisruptionBudget, ScaledObject, ServiceMonitor, PrometheusRule,
};

type Obj = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

const files = synthesize();
const committed = (file: string) => readFileSync(join(OUT_DIR, file), "utf8");
const docs = (file: string): Obj[] => parseAllDocuments(committed(file)).map((d) => d.toJSON() as Obj);
const pools = fleet.pools.map((p) => ({ pool: p, objects: docs(`pool-${p.name}.yaml`) }));
const find = (objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind);

describe("Kubernetes manifests", () => {
  it("are up to date with the TypeScript (npm run deploy:synth)", () => {
    expect([...files.keys()].sort()).toEqual(["alerts.yaml", "namespace.yaml", ...fleet.pools.map((p) => `pool-${p.name}.yaml`)].sort());
    for (const [file, text] of files) {
      expect(existsSync(join(OUT_DIR, file)), file).toBe(true);
      expect(committed(file), `${file} is stale: run npm run deploy:synth`).toBe(text);
    }
  });

  it("pass their schemas as committed, and the validators do reject a bad object", () => {
    let n = 0;
    for (const file of files.keys()) {
      for (const o of docs(file)) {
        const Model = MODELS[o.kind];
        expect(Model, `no schema for ${o.kind}`).toBeDefined();
        expect(() => new Model(o).validate(), `${file}: ${o.kind} ${o.metadata.name}`).not.toThrow();
        n++;
      }
    }
    expect(n).toBe(2 + 7 * fleet.pools.length);
    const bad = structuredClone(find(pools[0].objects, "Deployment")[0]);
    bad.spec.template.spec.containers[0].ports[0].containerPort = "fifty";
    expect(() => new MODELS.Deployment(bad).validate()).toThrow(/containerPort/);
    const badScaler = structuredClone(find(pools[0].objects, "ScaledObject")[0]);
    delete badScaler.spec.scaleTargetRef;
    expect(() => new MODELS.ScaledObject(badScaler).validate()).toThrow(/scaleTargetRef/);
  });

  it("run Triton as a sidecar that starts first and outlives the orchestrator, on the address the orchestrator uses", () => {
    for (const { objects } of pools) {
      const pod = find(objects, "Deployment")[0].spec.template.spec;
      const [triton] = pod.initContainers as IContainer[];
      const [orch] = pod.containers as IContainer[];
      expect(triton.restartPolicy).toBe("Always");
      expect(triton.resources!.limits!["nvidia.com/gpu"]).toBe(1);
      const grpc = triton.ports!.find((p) => p.name === "triton-grpc")!.containerPort;
      expect(orch.env!.find((e) => e.name === "TRITON_URL")!.value).toBe(`127.0.0.1:${grpc}`);
      // Start-up probe sized for loading the engines.
      const sp = triton.startupProbe!;
      expect(sp.periodSeconds! * sp.failureThreshold!).toBeGreaterThanOrEqual(fleet.engineLoadSeconds);
      // Token from a Secret, never inline.
      const token = orch.env!.find((e) => e.name === "ORCHESTRATOR_TOKEN")!;
      expect(token.value).toBeUndefined();
      expect(token.valueFrom!.secretKeyRef!.name).toBe(fleet.tokenSecret);
      expect(orch.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
      // The build Job writes the repository Triton serves and the orchestrator reads the tokenizer from.
      const job = find(objects, "Job")[0].spec.template.spec.containers[0] as IContainer;
      const out = job.args![job.args!.indexOf("--out") + 1];
      expect(out).toMatch(/^\/engines\/[^/]+\/repository$/);
      expect(triton.args).toContain(`--model-repository=${out}`);
      expect(orch.env!.find((e) => e.name === "MODEL_REPOSITORY")!.value).toBe(out);
    }
  });

  it("give a terminating pod longer than its drain grace, and probe paths the orchestrator serves", async () => {
    for (const { objects } of pools) {
      const pod = find(objects, "Deployment")[0].spec.template.spec;
      const orch = pod.containers[0] as IContainer;
      const drainMs = Number(orch.env!.find((e) => e.name === "DRAIN_GRACE_MS")!.value);
      expect(drainMs).toBe(fleet.drainGraceSeconds * 1000);
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
      expect(orch.readinessProbe!.httpGet).toMatchObject({ path: "/readyz", port: 9464 });
      expect(orch.livenessProbe!.httpGet).toMatchObject({ path: "/healthz", port: 9464 });
      expect(orch.env!.find((e) => e.name === "METRICS_PORT")!.value).toBe("9464");
    }
    // The metrics server answers those paths: /readyz follows readiness, /healthz only liveness.
    let ready = false;
    const server = await startMetricsServer(new OrchestratorMetrics().registry, 0, "127.0.0.1", async () => ready);
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      ready = true;
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("scale on the queue depth and active requests the orchestrator exports, per pool", () => {
    const exported = new OrchestratorMetrics().registry.render();
    for (const { pool, objects } of pools) {
      const so = find(objects, "ScaledObject")[0];
      expect(so.spec.scaleTargetRef.name).toBe(find(objects, "Deployment")[0].metadata.name);
      expect(so.spec).toMatchObject({ minReplicaCount: pool.replicas.min, maxReplicaCount: pool.replicas.max });
      const queries = (so.spec.triggers as { type: string; metadata: { query: string } }[]).map((t) => t.metadata.query);
      expect(queries.some((q) => q.includes("dimoo_orchestrator_queue_depth"))).toBe(true);
      expect(queries.some((q) => q.includes("dimoo_orchestrator_active_requests"))).toBe(true);
      for (const q of queries) {
        for (const [name] of q.matchAll(/dimoo_orchestrator_\w+/g)) expect(exported).toContain(`# TYPE ${name} `);
        expect(q).toContain(`service="${find(objects, "Service")[0].metadata.name}"`);
      }
    }
  });

  it("alert only on metrics the orchestrator exports (or kube-state-metrics')", () => {
    const exported = new OrchestratorMetrics().registry.render();
    const rules = docs("alerts.yaml")[0].spec.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(5);
    for (const r of rules) {
      for (const [name] of r.expr.matchAll(/dimoo_orchestrator_[a-z_]+?(?=_bucket\b|\{|\b)/g)) expect(exported, `${r.alert}: ${name}`).toContain(`# TYPE ${name} `);
      expect(r.expr, r.alert).toMatch(/dimoo_orchestrator_|kube_/);
    }
  });

  it("select the pool's pods (not the engine build's) in the Service, PDB and ServiceMonitor", () => {
    for (const { objects } of pools) {
      const podLabels = find(objects, "Deployment")[0].spec.template.metadata.labels as Record<string, string>;
      const jobLabels = find(objects, "Job")[0].spec.template.metadata.labels as Record<string, string>;
      const matches = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
      const selectors = [find(objects, "Service")[0].spec.selector, find(objects, "PodDisruptionBudget")[0].spec.selector.matchLabels];
      for (const sel of selectors) {
        expect(matches(sel, podLabels)).toBe(true);
        expect(matches(sel, jobLabels)).toBe(false);
      }
      const svcLabels = find(objects, "Service")[0].metadata.labels!;
      expect(matches(find(objects, "ServiceMonitor")[0].spec.selector.matchLabels, svcLabels)).toBe(true);
      expect(find(objects, "PodDisruptionBudget")[0].spec.maxUnavailable).toBe(1);
    }
  });
});
