/**
 * A validated Service document → the ServiceSpec message in its proto-JSON form (`ServiceSpec.fromJSON` reads it),
 * the same form `capa service apply -f spec.json` always took. The file speaks the job file's language (dollars,
 * durations, `resources.gpus`); the scheduler's validator stays the authority on cross-field rules (min ≤ max,
 * rollout steps) and names them by wire path.
 */
import { parseUsd } from "@capa/domain";
import { parseDuration } from "./duration.js";
import type { ServiceDocument } from "./schema.js";

/** "500ms" → 500; "30s", "2m", "1h30m" → milliseconds; undefined stays undefined. */
export function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^(\d+)ms$/.exec(text.trim());
  return ms ? Number(ms[1]) : parseDuration(text) * 1000;
}

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : [...value];

export function serviceSpecJsonFromDocument(doc: ServiceDocument): Record<string, unknown> {
  const s = doc.spec;
  return {
    name: doc.metadata.name,
    template: {
      command: [...s.command],
      env: { ...(s.env ?? {}) },
      workingDir: s.workdir ?? "",
      killGraceSeconds: s.killGrace === undefined ? 0 : parseDuration(s.killGrace),
      image: s.image ?? "",
    },
    readiness: {
      httpPath: s.readiness?.httpPath ?? "",
      periodMs: durationMs(s.readiness?.period) ?? 0,
      failureThreshold: s.readiness?.failureThreshold ?? 0,
    },
    regions: s.regions.map((r) => ({
      region: r.region,
      minReplicas: r.min ?? 0,
      maxReplicas: r.max ?? 0,
      demand: r.demand ?? 0,
    })),
    minReplicas: s.replicas?.min ?? 0,
    maxReplicas: s.replicas?.max ?? 0,
    target: {
      requestsPerSecondPerReplica: s.target?.requestsPerSecond ?? 0,
      p95LatencyMs: durationMs(s.target?.p95Latency) ?? 0,
      scaleUpWindowMs: durationMs(s.target?.scaleUpWindow) ?? 0,
      scaleDownWindowMs: durationMs(s.target?.scaleDownWindow) ?? 0,
    },
    gpusPerReplica: s.resources?.gpus ?? 0,
    gpuModels: list(s.resources?.gpuModels),
    maxPriceMicrosPerGpuHour: s.maxPrice === undefined ? 0 : parseUsd(s.maxPrice),
    budgetMicros: s.budget === undefined ? 0 : parseUsd(s.budget),
    modelVersion: s.modelVersion ?? "",
    rollout: {
      canaryPercent: s.rollout?.canary ?? 0,
      steps: [...(s.rollout?.steps ?? [])],
      pauseMs: durationMs(s.rollout?.pause) ?? 0,
      maxErrorRate: s.rollout?.maxErrorRate ?? 0,
      minRequests: s.rollout?.minRequests ?? 0,
      readyTimeoutMs: durationMs(s.rollout?.readyTimeout) ?? 0,
    },
    drift: { metric: s.drift?.metric ?? "", threshold: s.drift?.threshold ?? 0, trigger: s.drift?.schedule ?? "" },
  };
}
