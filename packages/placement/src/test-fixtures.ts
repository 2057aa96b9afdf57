/** Builders for tests (not exported from the package index). */
import { defaultJobSpec, type JobSpec, parseGpuSpec, parseUsd, residencyOfRegion } from "@capa/domain";
import type { AgentView, AllocationView, PlacementRequest } from "./model.js";
import { ClusterState } from "./state/cluster-state.js";

export const NOW = 1_700_000_000_000;

export interface AgentOptions {
  region?: string;
  zone?: string;
  provider?: string;
  fabricDomain?: string;
  residency?: string;
  labels?: Record<string, string>;
  reliability?: number;
  /** e.g. "8xH100-80GB" */
  gpus?: string;
  /** model → [on-demand USD, interruptible USD or 0] */
  prices?: Record<string, [string, string?]>;
  lastSeenMs?: number;
  draining?: boolean;
  unhealthy?: number[];
  drivers?: string[];
}

export function agent(id: string, o: AgentOptions = {}): AgentView {
  const gpus = parseGpuSpec(o.gpus ?? "8xH100-80GB").map((g, index) => ({
    index,
    model: g.model,
    vramMib: g.vramMib,
    healthy: !(o.unhealthy ?? []).includes(index),
  }));
  const models = [...new Set(gpus.map((g) => g.model))];
  const prices = o.prices ?? Object.fromEntries(models.map((m) => [m, ["2.00"]]));
  const region = o.region ?? "us-east";
  return {
    id,
    region,
    zone: o.zone ?? `${region}-a`,
    provider: o.provider ?? "acme",
    fabricDomain: o.fabricDomain ?? "",
    residency: o.residency ?? residencyOfRegion(region),
    labels: o.labels ?? {},
    reliability: o.reliability ?? 0.99,
    gpus,
    prices: Object.entries(prices).map(([gpuModel, [onDemand, spot]]) => ({
      gpuModel,
      onDemandPerHour: parseUsd(onDemand),
      interruptiblePerHour: spot ? parseUsd(spot) : 0,
    })),
    lastSeenMs: o.lastSeenMs ?? NOW,
    draining: o.draining ?? false,
    ...(o.drivers && { drivers: o.drivers }),
    simulated: true,
  };
}

export function stateOf(agents: AgentView[], allocations: AllocationView[] = []): ClusterState {
  const state = new ClusterState();
  for (const a of agents) state.upsertAgent(a);
  for (const a of allocations) state.addAllocation(a);
  return state;
}

export function request(jobId: string, spec: Partial<JobSpec> = {}): PlacementRequest {
  const full = defaultJobSpec(spec);
  return { jobId, spec: full, replicas: Array.from({ length: full.replicas }, (_, i) => i) };
}

export function allocation(taskId: string, agentId: string, gpuIndices: number[], o: Partial<AllocationView> = {}) {
  return {
    taskId,
    jobId: o.jobId ?? taskId.replace(/-\d+$/, ""),
    agentId,
    gpuIndices,
    priority: o.priority ?? 0,
    interruptible: o.interruptible ?? false,
    pricePerGpuHour: o.pricePerGpuHour ?? 2_000_000,
    startedAtMs: o.startedAtMs ?? NOW - 3_600_000,
    lastCheckpointMs: o.lastCheckpointMs ?? 0,
    ...(o.gang !== undefined ? { gang: o.gang } : {}),
    ...(o.stopping !== undefined ? { stopping: o.stopping } : {}),
  } as AllocationView;
}
