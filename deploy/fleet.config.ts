// The fleet's one typed configuration: image tags that go together, the GPU pools (GPU type, size, engine
// volume), drain and start-up budgets, and the autoscaling targets. `npm run deploy:synth` turns it into
// the Kubernetes manifests in deploy/kubernetes/ (docs/deploy.md).

export interface ImageTags {
  /** The orchestrator image (this repository's Dockerfile, default target). */
  orchestrator: string;
  /** The engine builder (Dockerfile target engine-builder), on nvcr.io/nvidia/tensorrt:<tensorrt>-py3. */
  engineBuilder: string;
  /** NVIDIA's stock Triton. Same <yy.mm> as the TensorRT release the engines were built with. */
  triton: string;
}

export interface GpuPool {
  /** Short name: the Deployment is dimoo-<name>. */
  name: string;
  /** What the nodes carry, as the NVIDIA GPU feature discovery labels it (nvidia.com/gpu.product). */
  gpuProduct: string;
  replicas: { min: number; max: number };
  /**
   * The engines for this GPU type: a shared volume written once per revision by the engine-build Job, into
   * /engines/<revision>/repository (plans only load on the GPU kind and TensorRT version that built them).
   * Bump the revision to roll the pool onto new engines.
   */
  engines: { claimName: string; storageClassName: string; sizeGi: number; revision: string };
  /** Step batcher slots (MAX_ACTIVE) and queue (MAX_QUEUE) per pod. */
  maxActive: number;
  maxQueue: number;
  /** ML-Cache requests at once (MAX_CACHED_ACTIVE): sizes Triton's CUDA pool at 4.61 GB each (1024²). */
  maxCachedActive: number;
}

export interface FleetConfig {
  namespace: string;
  images: ImageTags;
  /** The Secret holding ORCHESTRATOR_TOKEN (created by hand: kubectl create secret generic …). */
  tokenSecret: string;
  /** How long a terminating pod lets admitted requests finish (DRAIN_GRACE_MS). */
  drainGraceSeconds: number;
  /** Worst case for Triton to load every engine (start-up probe budget). */
  engineLoadSeconds: number;
  /** Where KEDA reads the orchestrator's metrics. */
  prometheusUrl: string;
  /** Scale out when the pool's queue per pod or its active requests per pod pass these. */
  scaling: { queuePerPod: number; activePerPod: number; scaleDownStabilizationSeconds: number };
  pools: GpuPool[];
}

export const fleet: FleetConfig = {
  namespace: "dimoo",
  images: {
    orchestrator: "ghcr.io/example/dimoo-orchestrator:0.1.0",
    engineBuilder: "ghcr.io/example/dimoo-engine-builder:0.1.0-trt26.02",
    triton: "nvcr.io/nvidia/tritonserver:26.02-py3",
  },
  tokenSecret: "dimoo-orchestrator-token",
  drainGraceSeconds: 120,
  engineLoadSeconds: 900,
  prometheusUrl: "http://prometheus-operated.monitoring.svc:9090",
  scaling: { queuePerPod: 4, activePerPod: 6, scaleDownStabilizationSeconds: 600 },
  pools: [
    {
      name: "h200",
      gpuProduct: "NVIDIA-H200",
      replicas: { min: 2, max: 50 },
      engines: { claimName: "dimoo-engines-h200", storageClassName: "shared-rwx", sizeGi: 100, revision: "trt26.02-r1" },
      maxActive: 8,
      maxQueue: 32,
      maxCachedActive: 8,
    },
    {
      name: "h100",
      gpuProduct: "NVIDIA-H100-80GB-HBM3",
      replicas: { min: 1, max: 20 },
      engines: { claimName: "dimoo-engines-h100", storageClassName: "shared-rwx", sizeGi: 100, revision: "trt26.02-r1" },
      maxActive: 8,
      maxQueue: 32,
      // 80 GB beside every engine: fewer cached sequences (model-repository/README.md, "The cached transformer").
      maxCachedActive: 4,
    },
  ],
};
