import type { Micros } from "./money.js";

export type GpuHealth = "ok" | "degraded" | "failed";

export interface Gpu {
  index: number;
  uuid: string;
  /** Canonical model, e.g. "H100-80GB". */
  model: string;
  vramMib: number;
  health: GpuHealth;
  migEnabled: boolean;
  utilizationPct: number;
  memoryUsedMib: number;
  temperatureC: number;
  driverVersion: string;
}

export interface GpuPrice {
  gpuModel: string;
  onDemandPerHour: Micros;
  /** 0 = no interruptible capacity offered. */
  interruptiblePerHour: Micros;
}

/** What an agent publishes about itself. */
export interface Advert {
  agentId: string;
  region: string;
  zone: string;
  hostname: string;
  gpus: Gpu[];
  cpuCores: number;
  memoryMib: number;
  labels: Record<string, string>;
  fabricDomain: string;
  prices: GpuPrice[];
  simulated: boolean;
  sequence: number;
  sentAtMs: number;
  ttlSeconds: number;
  version: string;
  bootId: string;
  provider: string;
  residency: string;
  reliability: number;
  /** Task drivers the agent has ("process", "container"); absent (an older agent) = ["process"]. */
  drivers?: string[];
}

export interface Heartbeat {
  agentId: string;
  region: string;
  bootId: string;
  sequence: number;
  sentAtMs: number;
  gpus: Gpu[];
  runningTaskIds: string[];
  freeGpus: number;
}

export type AgentStatus = "ready" | "draining" | "lost";

/** Residency zone of a region: its first dash-separated token ("eu-west" → "eu"). */
export function residencyOfRegion(region: string): string {
  return region.split("-")[0] ?? region;
}

export function priceFor(prices: GpuPrice[], model: string, interruptible: boolean): Micros | undefined {
  const p = prices.find((x) => x.gpuModel === model);
  if (!p) return undefined;
  if (interruptible) return p.interruptiblePerHour > 0 ? p.interruptiblePerHour : undefined;
  return p.onDemandPerHour;
}

/**
 * How long the scheduler holds a wholly silent region's agents (a cut, not dead machines) before it loses them
 * and re-places their tasks; an agent cut off for that long stops its own tasks first (agents/src/fence.ts), so
 * the two copies never run together. The scheduler's `--partition-grace` and the agents' (`capa agent
 * --partition-grace`, `partitionGraceMs`) must agree: a cut-off agent cannot read the scheduler's.
 */
export const DEFAULT_PARTITION_GRACE_MS = 120_000;
