// The fleet's alerts as a PrometheusRule (prometheus-operator), from the orchestrator's metrics
// (gpu-backend/src/service/metrics.ts) and kube-state-metrics. docs/deploy.md, "What to watch", explains them.
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import type { FleetConfig } from "../fleet.config";
import type { Manifest } from "./gpu-pool";

export function alerts(fleet: FleetConfig): Manifest[] {
  const ns = `namespace="${fleet.namespace}"`;
  const rule = (alert: string, expr: string, forDuration: string, summary: string) => ({
    alert,
    expr,
    for: forDuration,
    labels: { severity: "page" },
    annotations: { summary },
  });
  return [
    new PrometheusRule({
      metadata: { name: "dimoo-fleet", namespace: fleet.namespace, labels: { "app.kubernetes.io/part-of": "dimoo" } },
      spec: {
        groups: [
          {
            name: "dimoo.orchestrator",
            rules: [
              rule(
                "DimooPoolSaturated",
                `sum by (service)(dimoo_orchestrator_queue_depth{${ns}}) / count by (service)(dimoo_orchestrator_queue_depth{${ns}}) > ${2 * fleet.scaling.queuePerPod}`,
                "10m",
                "{{ $labels.service }}: queue per pod stays above twice the scaling target (at max replicas, or new pods do not start)",
              ),
              rule(
                "DimooErrors",
                `sum by (service)(rate(dimoo_orchestrator_errors_total{${ns},code!~"INVALID_ARGUMENT|CANCELLED|RESOURCE_EXHAUSTED"}[5m])) / sum by (service)(rate(dimoo_orchestrator_requests_total{${ns}}[5m])) > 0.02`,
                "10m",
                "{{ $labels.service }}: more than 2% of requests fail on the server side",
              ),
              rule(
                "DimooSlowEngine",
                `histogram_quantile(0.95, sum by (service, le)(rate(dimoo_orchestrator_engine_call_seconds_bucket{${ns},model="dimoo_transformer"}[5m]))) > 1`,
                "15m",
                "{{ $labels.service }}: p95 transformer call above 1 s",
              ),
              rule(
                "DimooStuckDrain",
                `max by (pod)(dimoo_orchestrator_draining{${ns}}) == 1`,
                `${Math.ceil((fleet.drainGraceSeconds + 60) / 60)}m`,
                "{{ $labels.pod }} has been draining longer than its grace period",
              ),
              rule(
                "DimooNoReadyPod",
                `kube_deployment_status_replicas_available{${ns},deployment=~"dimoo-.*"} == 0`,
                "2m",
                "{{ $labels.deployment }} has no ready pod",
              ),
              rule(
                "DimooEngineBuildFailed",
                `kube_job_status_failed{${ns},job_name=~"dimoo-engine-build-.*"} > 0`,
                "0m",
                "engine build {{ $labels.job_name }} failed: see its trtexec logs under /engines/<revision>/repository-onnx",
              ),
            ],
          },
        ],
      },
    }),
  ];
}
