/**
 * Model metrics of service replicas (from their readiness reports) as Prometheus gauges
 * (`capa_service_model_metric{tenant,service,region,revision,task,metric}`), and the drift rule: when a ready
 * replica of the current revision reports the policy's metric above its threshold, the retraining trigger fires
 * once for that revision (the record keeps which revision fired, so a restart or another leader does not fire it
 * again; a new revision, e.g. the retrained model, arms it anew). The trigger is a JSON message on
 * `capa.v1.service.<tenant>.<service>.retrain` — the seam the training side's schedule trigger subscribes to.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { ReplicaView } from "./controller.js";
import type { ServiceRecord } from "./model.js";

export interface RetrainTrigger {
  tenant: string;
  service: string;
  revision: number;
  modelVersion: string;
  metric: string;
  value: number;
  threshold: number;
  trigger: string;
  taskId: string;
  region: string;
  atMs: number;
}

/** Pure: the trigger to fire now, if any. */
export function driftTrigger(
  rec: ServiceRecord,
  replicas: { view: ReplicaView; metrics: Record<string, number> }[],
  nowMs: number,
): RetrainTrigger | undefined {
  const d = rec.spec.drift;
  if (!d.metric || rec.driftFiredRevision === rec.revision) return undefined;
  let worst: { view: ReplicaView; value: number } | undefined;
  for (const r of replicas) {
    const value = r.metrics[d.metric];
    if (!r.view.ready || r.view.record.revision !== rec.revision || value === undefined) continue;
    if (value > d.threshold && (!worst || value > worst.value)) worst = { view: r.view, value };
  }
  if (!worst) return undefined;
  return {
    tenant: rec.tenant,
    service: rec.name,
    revision: rec.revision,
    modelVersion: rec.spec.modelVersion,
    metric: d.metric,
    value: worst.value,
    threshold: d.threshold,
    trigger: d.trigger,
    taskId: worst.view.job?.tasks[0]?.id ?? "",
    region: worst.view.record.region,
    atMs: nowMs,
  };
}

type Labels = Record<"tenant" | "service" | "region" | "revision" | "task" | "metric", string>;

export class ModelMetricsGauges {
  private readonly gauge: Gauge<keyof Labels>;
  /** The label sets set per service, so a gone replica's series can be removed. */
  private readonly series = new Map<string, Labels[]>();
  readonly fired: Counter;

  constructor(registry: Registry) {
    this.gauge = new Gauge({
      name: "capa_service_model_metric",
      help: "Latest model metric a service replica reported (CAPA_METRICS lines)",
      labelNames: ["tenant", "service", "region", "revision", "task", "metric"] as const,
      registers: [registry],
    });
    this.fired = new Counter({
      name: "capa_service_retrain_triggers_total",
      help: "Retraining triggers fired by the drift rule",
      labelNames: ["tenant", "service"] as const,
      registers: [registry],
    });
  }

  /** Replaces the service's series with its replicas' current metrics (gone replicas drop out). */
  set(rec: ServiceRecord, replicas: { view: ReplicaView; metrics: Record<string, number> }[]): void {
    const key = `${rec.tenant}.${rec.name}`;
    for (const labels of this.series.get(key) ?? []) this.gauge.remove(labels);
    const now: Labels[] = [];
    for (const r of replicas) {
      const task = r.view.job?.tasks[0]?.id;
      if (!task) continue;
      for (const [metric, value] of Object.entries(r.metrics)) {
        const labels: Labels = {
          tenant: rec.tenant,
          service: rec.name,
          region: r.view.record.region,
          revision: String(r.view.record.revision),
          task,
          metric,
        };
        this.gauge.set(labels, value);
        now.push(labels);
      }
    }
    this.series.set(key, now);
  }
}
