/**
 * The Service kind in domain terms: its spec, its durable record (`capa_services/<tenant>.<name>`) and how a
 * replica becomes a job. A replica is a one-replica INFERENCE job pinned to its region, so placement (filters,
 * cost and latency scorers), metering, billing and `capa explain` are the jobs' own; the controller only decides
 * how many there are and which go. The agent recognises a replica by `CAPA_SERVICE` in its env: it assigns
 * `$PORT`, probes readiness as `CAPA_READINESS_*` says and reports it on `capa.v1.task.<taskId>.ready`.
 */
import {
  type FieldViolation,
  type JobSpec,
  jobSpecViolations,
  type TaskTemplate,
  tenantViolations,
  throwIfViolations,
} from "@capa/domain";
import { specDigest } from "../util/ids.js";
import type { RolloutPolicy, RolloutState } from "./rollout.js";

export interface ReadinessProbe {
  /** "" = TCP connect. */
  httpPath: string;
  periodMs: number;
  failureThreshold: number;
}

export interface ServiceRegion {
  region: string;
  minReplicas: number;
  maxReplicas: number;
  demand: number;
}

export interface ScalingTarget {
  requestsPerSecondPerReplica: number;
  p95LatencyMs: number;
  scaleUpWindowMs: number;
  scaleDownWindowMs: number;
}

export interface ServiceSpec {
  name: string;
  template: TaskTemplate;
  readiness: ReadinessProbe;
  regions: ServiceRegion[];
  minReplicas: number;
  maxReplicas: number;
  target: ScalingTarget;
  gpusPerReplica: number;
  gpuModels: string[];
  maxPricePerGpuHour: number;
  budget: number;
  modelVersion: string;
  rollout: RolloutPolicy;
  drift: DriftPolicy;
}

export interface DriftPolicy {
  /** "" = off. */
  metric: string;
  threshold: number;
  trigger: string;
}

/** One replica the controller asked for. `jobId` is empty until its submission answered. */
export interface ReplicaRecord {
  /** Idempotency key of the replica's job submission: a crash between record and submit is healed by a retry. */
  requestId: string;
  jobId: string;
  region: string;
  revision: number;
  /** Being scaled down / replaced: cancelled, dropped once its job is final. */
  removing: boolean;
  createdAtMs: number;
  /** The decision that added it ("scale-up 1→3: …"), shown by `capa explain` on its job. */
  cause?: string;
}

export interface ServiceEvent {
  atMs: number;
  region: string;
  kind: "scale-up" | "scale-down" | "replace" | "budget" | "revision" | "rollout" | "drift";
  from: number;
  to: number;
  reason: string;
  jobId: string;
}

export interface ServiceRevision {
  revision: number;
  modelVersion: string;
  createdAtMs: number;
  templateDigest: string;
  spec: ServiceSpec;
  status: "active" | "rolling-out" | "rolled-back" | "superseded";
}

export type ServiceState = "progressing" | "ready" | "budget-exhausted" | "deleting";

export interface ServiceRecord {
  name: string;
  tenant: string;
  /** The current revision's spec. */
  spec: ServiceSpec;
  revision: number;
  state: ServiceState;
  /** Autoscaler's decided replica count per region (current revision). */
  desired: Record<string, number>;
  replicas: ReplicaRecord[];
  /** Replica request ids are `svc-<name>-<seq>`. */
  nextSeq: number;
  events: ServiceEvent[];
  revisions: ServiceRevision[];
  /** Spend of replicas already dropped from `replicas` (their jobs final). */
  spentDropped: number;
  deleteRequested: boolean;
  /** The latest rollout; `request` is a pending promote/abort for the controller. */
  rollout?: RolloutState & { request?: "promote" | "abort" };
  /** The revision whose drift trigger has fired (once per revision). */
  driftFiredRevision?: number;
  createdAtMs: number;
  updatedAtMs: number;
}

export const MAX_EVENTS = 50;
export const MAX_REVISIONS = 20;
export const MAX_REGIONS = 16;
export const MAX_REPLICAS_PER_REGION = 64;
export const DEFAULT_PROBE_PERIOD_MS = 1_000;
export const DEFAULT_FAILURE_THRESHOLD = 2;
export const DEFAULT_SCALE_UP_WINDOW_MS = 5_000;
export const DEFAULT_SCALE_DOWN_WINDOW_MS = 30_000;
export const DEFAULT_ROLLOUT = { pauseMs: 30_000, maxErrorRate: 0.05, minRequests: 20, readyTimeoutMs: 120_000 };
const NAME = /^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$/;
const REGION = /^[A-Za-z0-9_-]{1,64}$/;

export const serviceKey = (tenant: string, name: string) => `${tenant}.${name}`;
export const endpointsKey = (tenant: string, name: string, region: string) => `${tenant}.${name}.${region}`;

/** Fills defaults (zero values on the wire) and validates; INVALID_ARGUMENT with each field's path. */
export function normalizeServiceSpec(tenant: string, spec: ServiceSpec | undefined): ServiceSpec {
  const v: FieldViolation[] = [...tenantViolations(tenant)];
  if (!spec) {
    v.push({ field: "spec", message: "is required" });
    throwIfViolations(v);
  }
  const s = structuredClone(spec as ServiceSpec);
  if (!NAME.test(s.name))
    v.push({ field: "spec.name", message: "must be 1-48 lower-case letters, digits or '-', not at either end" });
  s.maxReplicas ||= 1;
  if (!Number.isInteger(s.maxReplicas) || s.maxReplicas > MAX_REPLICAS_PER_REGION)
    v.push({ field: "spec.max_replicas", message: `must be in 1..${MAX_REPLICAS_PER_REGION}` });
  if (s.minReplicas > s.maxReplicas) v.push({ field: "spec.min_replicas", message: "must be at most max_replicas" });
  if (s.regions.length === 0) v.push({ field: "spec.regions", message: "must name at least one region" });
  if (s.regions.length > MAX_REGIONS) v.push({ field: "spec.regions", message: `must have at most ${MAX_REGIONS}` });
  const seen = new Set<string>();
  s.regions.forEach((r, i) => {
    const f = `spec.regions[${i}]`;
    if (!REGION.test(r.region)) v.push({ field: `${f}.region`, message: "must be a region name" });
    if (seen.has(r.region)) v.push({ field: `${f}.region`, message: `names ${r.region} twice` });
    seen.add(r.region);
    r.minReplicas ||= s.minReplicas;
    r.maxReplicas ||= s.maxReplicas;
    if (r.maxReplicas > MAX_REPLICAS_PER_REGION)
      v.push({ field: `${f}.max_replicas`, message: `must be at most ${MAX_REPLICAS_PER_REGION}` });
    if (r.minReplicas > r.maxReplicas) v.push({ field: `${f}.min_replicas`, message: "must be at most max_replicas" });
  });
  s.readiness.periodMs ||= DEFAULT_PROBE_PERIOD_MS;
  s.readiness.failureThreshold ||= DEFAULT_FAILURE_THRESHOLD;
  if (s.readiness.periodMs < 100 || s.readiness.periodMs > 60_000)
    v.push({ field: "spec.readiness.period_ms", message: "must be in 100..60000" });
  if (s.readiness.failureThreshold > 100)
    v.push({ field: "spec.readiness.failure_threshold", message: "must be at most 100" });
  if (s.readiness.httpPath !== "" && !/^\/[\x21-\x7e]{0,255}$/.test(s.readiness.httpPath))
    v.push({ field: "spec.readiness.http_path", message: "must start with '/' and be printable ASCII, at most 256" });
  const t = s.target;
  if (!Number.isFinite(t.requestsPerSecondPerReplica) || t.requestsPerSecondPerReplica < 0)
    v.push({ field: "spec.target.requests_per_second_per_replica", message: "must be a non-negative number" });
  t.scaleUpWindowMs ||= DEFAULT_SCALE_UP_WINDOW_MS;
  t.scaleDownWindowMs ||= DEFAULT_SCALE_DOWN_WINDOW_MS;
  if (t.scaleUpWindowMs > 3_600_000) v.push({ field: "spec.target.scale_up_window_ms", message: "must be ≤ 1 h" });
  if (t.scaleDownWindowMs > 3_600_000) v.push({ field: "spec.target.scale_down_window_ms", message: "must be ≤ 1 h" });
  const ro = s.rollout;
  ro.pauseMs ||= DEFAULT_ROLLOUT.pauseMs;
  ro.maxErrorRate ||= DEFAULT_ROLLOUT.maxErrorRate;
  ro.minRequests ||= DEFAULT_ROLLOUT.minRequests;
  ro.readyTimeoutMs ||= DEFAULT_ROLLOUT.readyTimeoutMs;
  if (ro.steps.length === 0) ro.steps = [100];
  if (!Number.isInteger(ro.canaryPercent) || ro.canaryPercent > 100)
    v.push({ field: "spec.rollout.canary_percent", message: "must be in 0..100" });
  if (
    ro.steps.some((x, i) => !Number.isInteger(x) || x < 1 || x > 100 || (i > 0 && x <= ro.steps[i - 1]!)) ||
    ro.steps.at(-1) !== 100 ||
    ro.steps.length > 10
  )
    v.push({ field: "spec.rollout.steps", message: "must be at most 10 increasing percents ending at 100" });
  if (!(ro.maxErrorRate >= 0 && ro.maxErrorRate <= 1))
    v.push({ field: "spec.rollout.max_error_rate", message: "must be in 0..1" });
  if (ro.pauseMs > 3_600_000) v.push({ field: "spec.rollout.pause_ms", message: "must be at most 1 h" });
  if (ro.readyTimeoutMs > 3_600_000) v.push({ field: "spec.rollout.ready_timeout_ms", message: "must be at most 1 h" });
  if (s.drift.metric !== "" && !/^[a-z_][a-z0-9_]{0,63}$/.test(s.drift.metric))
    v.push({ field: "spec.drift.metric", message: "must be a metric name ([a-z_][a-z0-9_]*, at most 64)" });
  if (!Number.isFinite(s.drift.threshold)) v.push({ field: "spec.drift.threshold", message: "must be a number" });
  if (s.drift.trigger.length > 256) v.push({ field: "spec.drift.trigger", message: "must be at most 256 characters" });
  if (s.modelVersion.length > 128) v.push({ field: "spec.model_version", message: "must be at most 128 characters" });
  for (const name of Object.keys(s.template.env))
    if (name.startsWith("CAPA_")) v.push({ field: `spec.template.env.${name}`, message: "CAPA_* is reserved" });
  if (s.regions[0]) v.push(...jobSpecViolations(replicaJobSpec(s, s.regions[0].region, 0), "spec"));
  throwIfViolations(v);
  return s;
}

/** The one-replica job of a replica in `region`: pinned there, its demand informing the latency scorer. */
export function replicaJobSpec(s: ServiceSpec, region: string, revision: number): JobSpec {
  const r = s.regions.find((x) => x.region === region);
  return {
    name: `${s.name}-${region}`.slice(0, 63),
    kind: "inference",
    replicas: 1,
    gpusPerReplica: s.gpusPerReplica,
    gpuModels: s.gpuModels,
    minVramMib: 0,
    regions: [region],
    excludeRegions: [],
    dataRegion: "",
    residency: "",
    maxPricePerGpuHour: s.maxPricePerGpuHour,
    budget: 0,
    priority: 0,
    interruptible: false,
    expectedDurationSeconds: 0,
    demandByRegion: { [region]: Math.max(1, r?.demand ?? 1) },
    allowFabricSpanning: false,
    nodeSelector: {},
    template: {
      ...s.template,
      env: {
        ...s.template.env,
        CAPA_SERVICE: s.name,
        CAPA_SERVICE_REVISION: String(revision),
        CAPA_MODEL_VERSION: s.modelVersion,
        CAPA_READINESS_PATH: s.readiness.httpPath,
        CAPA_READINESS_PERIOD_MS: String(s.readiness.periodMs),
        CAPA_READINESS_FAILURES: String(s.readiness.failureThreshold),
      },
    },
    deadlineUnixMs: 0,
  };
}

/** What makes a new revision: what the replicas run, not how many there are. */
export function templateDigest(s: ServiceSpec): string {
  return specDigest({ template: s.template, gpus: s.gpusPerReplica, models: s.gpuModels, v: s.modelVersion });
}
