// One GPU pool as Kubernetes objects (typed with kubernetes-models): the engine volume and its one-off
// build Job, the Deployment (Triton as a native sidecar + the orchestrator in one pod), its Service,
// PodDisruptionBudget, KEDA ScaledObject and ServiceMonitor. Values come from deploy/fleet.config.ts.
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Namespace, PersistentVolumeClaim, Service, type IContainer, type IToleration } from "kubernetes-models/v1";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import type { FleetConfig, GpuPool } from "../fleet.config";

/** Anything with the models' validate() and toJSON(). */
export interface Manifest {
  kind?: string;
  metadata?: { name?: string };
  validate(): void;
  toJSON(): unknown;
}

const ENGINES = "/engines";
const ORCHESTRATOR_PORT = 50051;
const METRICS_PORT = 9464;
/** One cached request's state at 1024² (model-repository/README.md). */
const CACHED_STATE_BYTES = 4.61e9;

export function namespace(fleet: FleetConfig): Manifest[] {
  return [new Namespace({ metadata: { name: fleet.namespace, labels: { "app.kubernetes.io/part-of": "dimoo" } } })];
}

export function gpuPool(fleet: FleetConfig, pool: GpuPool): Manifest[] {
  const name = `dimoo-${pool.name}`;
  const ns = fleet.namespace;
  const labels = { "app.kubernetes.io/name": "dimoo-orchestrator", "app.kubernetes.io/part-of": "dimoo", "dimoo.dev/pool": pool.name };
  const gpuNode = { "nvidia.com/gpu.product": pool.gpuProduct };
  const gpuToleration: IToleration[] = [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }];
  // The build Job's pods must not match the pool's Service, PDB or ServiceMonitor selectors.
  const buildLabels = { "app.kubernetes.io/name": "dimoo-engine-build", "app.kubernetes.io/part-of": "dimoo", "dimoo.dev/pool": pool.name };
  const drainMs = fleet.drainGraceSeconds * 1000;
  const cudaPool = Math.round((pool.maxCachedActive + 1) * CACHED_STATE_BYTES);
  // Each engine revision in its own directory: a new build never touches the files pods are serving, and a
  // rollout moves the pool from one directory to the next (docs/deploy.md, "Upgrading engines").
  const REPOSITORY = `${ENGINES}/${pool.engines.revision}/repository`;

  const engineClaim = new PersistentVolumeClaim({
    metadata: { name: pool.engines.claimName, namespace: ns, labels },
    spec: {
      accessModes: ["ReadWriteMany"],
      storageClassName: pool.engines.storageClassName,
      resources: { requests: { storage: `${pool.engines.sizeGi}Gi` } },
    },
  });

  // Once per GPU type and TensorRT release, on a node of that GPU type; every pod of the pool reuses it.
  const engineBuild = new Job({
    metadata: { name: `dimoo-engine-build-${pool.name}-${pool.engines.revision.replace(/[^a-z0-9-]/g, "-")}`, namespace: ns, labels: buildLabels },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels: buildLabels },
        spec: {
          restartPolicy: "Never",
          nodeSelector: gpuNode,
          tolerations: gpuToleration,
          securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, runAsNonRoot: true },
          containers: [
            {
              name: "build-engines",
              image: fleet.images.engineBuilder,
              args: ["--checkpoint", "/checkpoint", "--out", REPOSITORY],
              resources: { limits: { "nvidia.com/gpu": 1, memory: "96Gi" }, requests: { cpu: "8", memory: "64Gi" } },
              volumeMounts: [
                { name: "engines", mountPath: ENGINES },
                { name: "checkpoint", mountPath: "/checkpoint", readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: "engines", persistentVolumeClaim: { claimName: pool.engines.claimName } },
            { name: "checkpoint", persistentVolumeClaim: { claimName: "dimoo-checkpoint", readOnly: true } },
          ],
        },
      },
    },
  });

  const triton: IContainer = {
    name: "triton",
    image: fleet.images.triton,
    // A native sidecar (init container that keeps running): it starts first, its start-up probe holds the
    // orchestrator back until the engines are loaded, and on termination it is stopped only after the
    // orchestrator has drained and exited, so in-flight generations keep their engine to the end.
    restartPolicy: "Always",
    args: [
      "tritonserver",
      `--model-repository=${REPOSITORY}`,
      "--model-control-mode=none",
      "--strict-readiness=true",
      "--exit-timeout-secs=30",
      `--cuda-memory-pool-byte-size=0:${cudaPool}`,
    ],
    ports: [
      { name: "triton-http", containerPort: 8000 },
      { name: "triton-grpc", containerPort: 8001 },
      { name: "triton-metrics", containerPort: 8002 },
    ],
    resources: { limits: { "nvidia.com/gpu": 1, memory: "96Gi" }, requests: { cpu: "4", memory: "64Gi" } },
    startupProbe: { httpGet: { path: "/v2/health/ready", port: 8000 }, periodSeconds: 10, failureThreshold: Math.ceil(fleet.engineLoadSeconds / 10) },
    livenessProbe: { httpGet: { path: "/v2/health/live", port: 8000 }, periodSeconds: 10, failureThreshold: 3 },
    volumeMounts: [
      { name: "engines", mountPath: ENGINES, readOnly: true },
      { name: "dshm", mountPath: "/dev/shm" },
    ],
  };

  const orchestrator: IContainer = {
    name: "orchestrator",
    image: fleet.images.orchestrator,
    env: [
      { name: "TRITON_URL", value: "127.0.0.1:8001" },
      { name: "ORCHESTRATOR_TOKEN", valueFrom: { secretKeyRef: { name: fleet.tokenSecret, key: "token" } } },
      { name: "MODEL_REPOSITORY", value: REPOSITORY },
      { name: "ORCHESTRATOR_HOST", value: "0.0.0.0" },
      { name: "ORCHESTRATOR_PORT", value: String(ORCHESTRATOR_PORT) },
      // Probes and Prometheus reach the metrics port from outside the pod.
      { name: "METRICS_HOST", value: "0.0.0.0" },
      { name: "METRICS_PORT", value: String(METRICS_PORT) },
      { name: "DRAIN_GRACE_MS", value: String(drainMs) },
      { name: "MAX_ACTIVE", value: String(pool.maxActive) },
      { name: "MAX_QUEUE", value: String(pool.maxQueue) },
      { name: "MAX_CACHED_ACTIVE", value: String(pool.maxCachedActive) },
    ],
    ports: [
      { name: "grpc", containerPort: ORCHESTRATOR_PORT },
      { name: "metrics", containerPort: METRICS_PORT },
    ],
    resources: { requests: { cpu: "4", memory: "8Gi" }, limits: { memory: "16Gi" } },
    // Triton is already up (sidecar start-up probe); this covers tsx's first transpile and the tokenizer.
    startupProbe: { httpGet: { path: "/healthz", port: METRICS_PORT }, periodSeconds: 2, failureThreshold: 60 },
    // /readyz = the orchestrator's Health: every model ready and not draining. A draining pod leaves the
    // Service's endpoints within one period.
    readinessProbe: { httpGet: { path: "/readyz", port: METRICS_PORT }, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 1, successThreshold: 1 },
    livenessProbe: { httpGet: { path: "/healthz", port: METRICS_PORT }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    volumeMounts: [
      { name: "engines", mountPath: ENGINES, readOnly: true },
      // tsx keeps its transpile cache here; the root file system is read-only.
      { name: "tmp", mountPath: "/tmp" },
    ],
  };

  const deployment = new Deployment({
    metadata: { name, namespace: ns, labels },
    spec: {
      // KEDA owns the replica count between min and max.
      replicas: pool.replicas.min,
      selector: { matchLabels: labels },
      // One new GPU pod before an old one goes: a rollout (new engines, new image) never lowers capacity.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: { "dimoo.dev/engines-revision": pool.engines.revision } },
        spec: {
          // The drain, plus time for the last results to be sent and Triton to stop.
          terminationGracePeriodSeconds: fleet.drainGraceSeconds + 30,
          nodeSelector: gpuNode,
          tolerations: gpuToleration,
          securityContext: { fsGroup: 1000 },
          initContainers: [triton],
          containers: [orchestrator],
          volumes: [
            { name: "engines", persistentVolumeClaim: { claimName: pool.engines.claimName, readOnly: true } },
            { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "2Gi" } },
            { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
          ],
        },
      },
    },
  });

  const service = new Service({
    metadata: { name, namespace: ns, labels },
    spec: {
      selector: labels,
      ports: [
        { name: "grpc", port: ORCHESTRATOR_PORT, targetPort: "grpc", appProtocol: "kubernetes.io/h2c" },
        { name: "metrics", port: METRICS_PORT, targetPort: "metrics" },
        { name: "triton-metrics", port: 8002, targetPort: "triton-metrics" },
      ],
    },
  });

  // Voluntary evictions (node drains, upgrades) take one GPU pod at a time, each draining first.
  const pdb = new PodDisruptionBudget({
    metadata: { name, namespace: ns, labels },
    spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
  });

  const inPool = `namespace="${ns}",service="${name}"`;
  const scaledObject = new ScaledObject({
    metadata: { name, namespace: ns, labels },
    spec: {
      scaleTargetRef: { name },
      minReplicaCount: pool.replicas.min,
      maxReplicaCount: pool.replicas.max,
      pollingInterval: 15,
      cooldownPeriod: fleet.scaling.scaleDownStabilizationSeconds,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            // GPU pods take minutes to load engines: add quickly, remove slowly (each removal drains).
            scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: "Pods", value: 4, periodSeconds: 60 }] },
            scaleDown: { stabilizationWindowSeconds: fleet.scaling.scaleDownStabilizationSeconds, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] },
          },
        },
      },
      triggers: [
        {
          type: "prometheus",
          name: "queue-depth",
          metadata: {
            serverAddress: fleet.prometheusUrl,
            // AverageValue: KEDA divides by the replica count, so the threshold is per pod.
            query: `sum(dimoo_orchestrator_queue_depth{${inPool}})`,
            threshold: String(fleet.scaling.queuePerPod),
            ignoreNullValues: "true",
          },
        },
        {
          type: "prometheus",
          name: "active-requests",
          metadata: {
            serverAddress: fleet.prometheusUrl,
            query: `sum(dimoo_orchestrator_active_requests{${inPool}})`,
            threshold: String(fleet.scaling.activePerPod),
            ignoreNullValues: "true",
          },
        },
      ],
    },
  });

  const serviceMonitor = new ServiceMonitor({
    metadata: { name, namespace: ns, labels },
    spec: {
      selector: { matchLabels: labels },
      namespaceSelector: { matchNames: [ns] },
      targetLabels: ["dimoo.dev/pool"],
      endpoints: [
        { port: "metrics", path: "/metrics", interval: "15s" },
        { port: "triton-metrics", path: "/metrics", interval: "15s" },
      ],
    },
  });

  return [engineClaim, engineBuild, deployment, service, pdb, scaledObject, serviceMonitor];
}
