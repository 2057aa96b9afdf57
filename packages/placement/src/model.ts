/**
 * The placement engine's public model. The scheduler keeps one `ClusterState` up to date incrementally
 * (adverts, allocations, releases) and asks the engine for a plan per job; the CLI's explain/simulate and
 * the benchmarks use the same types. Pure data: no I/O, no clock, no randomness here.
 */
import type { GpuPrice, JobSpec, Micros } from "@capa/domain";
import type { ElasticPlan } from "./elastic/place.js";
import type { Profile } from "./profile.js";

export interface GpuView {
  index: number;
  model: string;
  vramMib: number;
  /** Unhealthy GPUs are never placed on. */
  healthy: boolean;
}

/** One agent (machine) as the engine sees it. */
export interface AgentView {
  id: string;
  region: string;
  zone: string;
  provider: string;
  /** NVLink / fabric domain; gangs prefer one. */
  fabricDomain: string;
  residency: string;
  labels: Record<string, string>;
  /** 0..1, from the agent's history (1 = never lost a task). */
  reliability: number;
  gpus: GpuView[];
  prices: GpuPrice[];
  /** When the scheduler last heard from the agent (advert or heartbeat), on the injected clock. */
  lastSeenMs: number;
  draining: boolean;
  simulated: boolean;
  /** Task drivers the agent has; absent = ["process"]. */
  drivers?: readonly string[];
}

/** A running (or assigned) task holding GPUs. */
export interface AllocationView {
  taskId: string;
  jobId: string;
  agentId: string;
  gpuIndices: number[];
  priority: number;
  interruptible: boolean;
  pricePerGpuHour: Micros;
  startedAtMs: number;
  /** Last checkpoint the task reported; 0 = none (all work since start would be lost). */
  lastCheckpointMs: number;
  /** Part of a gang: preempting one task stops every task of the job, so all of them count as victims. */
  gang?: boolean;
  /**
   * Being stopped (preempted, cancelled): it still holds its GPUs, but never becomes a victim, and a job that fits
   * once stopping allocations are gone is "pending" (waiting for them) rather than preempting anything else.
   */
  stopping?: boolean;
}

export interface PlacementRequest {
  jobId: string;
  spec: JobSpec;
  /** Replica indices still to place (all of them for a new job; a subset when re-placing lost tasks). */
  replicas: number[];
  /** GB each replica reads from `spec.dataRegion` (egress cost); defaults to the profile's `defaultDataGb`. */
  dataGb?: number;
  /** Elastic gangs (`spec.elastic`): what the gang runs at now, and what the size decision must know. */
  elastic?: ElasticRequest;
}

export interface ElasticRequest {
  /** Workers running now; 0 = none (a first placement, or a re-placement after a loss or a grow). */
  current: number;
  /** Why the gang is being (re-)placed, for the explanation: "task j-2 lost: agent gone". */
  cause?: string;
  /** Money left in the job's budget (micros); absent = no budget (or no duration to price one). */
  budgetLeft?: Micros;
  /**
   * The gang's own allocations, counted as free: asks "what size would it get if it restarted now?" (the grow
   * check of a running gang). The plan is then only a decision: its GPUs are still held by these allocations.
   */
  releasing?: AllocationView[];
}

export interface PlaceOptions {
  nowMs: number;
  seed: number;
  /** A profile name the engine knows, or a full profile (validated per call); defaults to the active one. */
  profile?: string | Profile;
  /** Adverts older than this are stale (filter "stale-advert"). */
  maxAdvertAgeMs?: number;
  /** Search for the cheapest relaxation of an unplaceable job (default true; simulations may skip it). */
  relaxations?: boolean;
}

export interface Placement {
  replica: number;
  agentId: string;
  region: string;
  gpuModel: string;
  gpuIndices: number[];
  pricePerGpuHour: Micros;
  interruptible: boolean;
  score: number;
  /** Per-scorer normalised score (0-100) before weighting. */
  scores: Record<string, number>;
}

export interface Preemption {
  taskId: string;
  jobId: string;
  agentId: string;
  gpuIndices: number[];
  reason: string;
}

export type PlanOutcome = "placed" | "preempting" | "pending" | "unplaceable";

export interface Explanation {
  jobId: string;
  outcome: PlanOutcome;
  profile: string;
  candidatesConsidered: number;
  /** Rejections counted by named reason, e.g. { "insufficient-gpus": 12, "over-max-price": 3 }. */
  rejections: Record<string, number>;
  chosen: Placement[];
  runnerUp: Placement[];
  /** For an unplaceable job: the cheapest relaxation that would place it, in words. */
  relaxation: string;
  preemptedTaskIds: string[];
  /** Outcome "pending" only: stopping tasks whose GPUs the job will take once they are released. */
  awaitingTaskIds?: string[];
  summary: string[];
  decidedAtMs: number;
  seed: number;
  estimatedCost: Micros;
  /** Elastic gangs: the size decision (its summary is the first line of `summary`). */
  elastic?: ElasticPlan;
}

export interface Plan {
  jobId: string;
  outcome: PlanOutcome;
  /** All or nothing for gangs: empty unless every requested replica is placed. */
  placements: Placement[];
  /** Allocations to stop first (outcome "preempting"). */
  preemptions: Preemption[];
  explanation: Explanation;
  /** Elastic gangs: the size decision. */
  elastic?: ElasticPlan;
}
