/**
 * The console's views as plain data: pure functions from the scheduler's in-memory state (agents, jobs, decisions,
 * ledger entries) to the JSON the page renders. Scoping is decided by the routes (who may see which tenant); these
 * functions only shape what they are given. Money stays integer micro-dollars; the page formats it.
 */
import type { Job } from "@capa/domain";
import type { LedgerEntry } from "@capa/market";
import type { AgentInfo } from "../agents/fleet.js";
import type { Explanation } from "../planner/engine.js";

/** One (region, GPU model) cell of the fleet: the order book's view, without naming agents. */
export interface FleetCell {
  region: string;
  gpuModel: string;
  agents: number;
  totalGpus: number;
  /** Healthy GPUs on ready agents that hold no task: what a job could get now. */
  freeGpus: number;
  usedGpus: number;
  /** Lost, draining or unhealthy: neither free nor used. */
  unavailableGpus: number;
  minPriceMicros: number;
  maxPriceMicros: number;
  /** Cheapest interruptible price; 0 when no agent offers one. */
  minSpotMicros: number;
}

export interface AgentRow {
  agentId: string;
  region: string;
  status: string;
  provider: string;
  gpus: Array<{ model: string; total: number; free: number; priceMicros: number; spotMicros: number }>;
  tasks: number;
  lastSeenMs: number;
}

export function fleetCells(agents: readonly AgentInfo[]): FleetCell[] {
  const cells = new Map<string, FleetCell>();
  for (const a of agents) {
    const ad = a.record.advert;
    const free = new Set(a.freeGpuIndices);
    const ready = a.status === "ready";
    for (const model of new Set(ad.gpus.map((g) => g.model))) {
      const key = `${ad.region}\u0000${model}`;
      const price = ad.prices.find((p) => p.gpuModel === model);
      const cell = cells.get(key) ?? {
        region: ad.region,
        gpuModel: model,
        agents: 0,
        totalGpus: 0,
        freeGpus: 0,
        usedGpus: 0,
        unavailableGpus: 0,
        minPriceMicros: Number.MAX_SAFE_INTEGER,
        maxPriceMicros: 0,
        minSpotMicros: 0,
      };
      cell.agents += 1;
      for (const g of ad.gpus.filter((x) => x.model === model)) {
        cell.totalGpus += 1;
        if (!ready || g.health !== "ok") cell.unavailableGpus += 1;
        else if (free.has(g.index)) cell.freeGpus += 1;
        else cell.usedGpus += 1;
      }
      if (price) {
        cell.minPriceMicros = Math.min(cell.minPriceMicros, price.onDemandPerHour);
        cell.maxPriceMicros = Math.max(cell.maxPriceMicros, price.onDemandPerHour);
        if (price.interruptiblePerHour > 0)
          cell.minSpotMicros =
            cell.minSpotMicros === 0
              ? price.interruptiblePerHour
              : Math.min(cell.minSpotMicros, price.interruptiblePerHour);
      }
      cells.set(key, cell);
    }
  }
  return [...cells.values()]
    .map((c) => (c.minPriceMicros === Number.MAX_SAFE_INTEGER ? { ...c, minPriceMicros: 0 } : c))
    .sort((a, b) => a.region.localeCompare(b.region) || a.gpuModel.localeCompare(b.gpuModel));
}

export function agentRows(agents: readonly AgentInfo[]): AgentRow[] {
  return agents.map((a) => {
    const ad = a.record.advert;
    const free = new Set(a.freeGpuIndices);
    const models = [...new Set(ad.gpus.map((g) => g.model))];
    return {
      agentId: ad.agentId,
      region: ad.region,
      status: a.status,
      provider: ad.provider,
      gpus: models.map((model) => {
        const of = ad.gpus.filter((g) => g.model === model);
        const price = ad.prices.find((p) => p.gpuModel === model);
        return {
          model,
          total: of.length,
          free: of.filter((g) => free.has(g.index)).length,
          priceMicros: price?.onDemandPerHour ?? 0,
          spotMicros: price?.interruptiblePerHour ?? 0,
        };
      }),
      tasks: a.taskIds.length,
      lastSeenMs: a.lastSeenMs,
    };
  });
}

/** A job as the console lists it: what it asked for and where it is, never its command, env or secrets. */
export interface JobRow {
  id: string;
  tenant: string;
  name: string;
  kind: string;
  state: string;
  reason: string;
  replicas: number;
  gpusPerReplica: number;
  gpuModels: string[];
  maxPriceMicros: number;
  createdAtMs: number;
  finishedAtMs: number;
  /** Seconds since submission (pending jobs: how long it has waited). */
  ageS: number;
  spentMicros: number;
  tasks: Array<{
    id: string;
    state: string;
    agentId: string;
    region: string;
    gpuModel: string;
    gpus: number;
    priceMicros: number;
    startedAtMs: number;
  }>;
}

export interface JobsView {
  queue: JobRow[];
  running: JobRow[];
  recent: JobRow[];
  counts: Record<string, number>;
}

const QUEUED = new Set(["pending", "rescheduling", "preempted"]);
const ACTIVE = new Set(["placed", "running"]);

export function jobRow(job: Job, nowMs: number): JobRow {
  return {
    id: job.id,
    tenant: job.tenant,
    name: job.spec.name,
    kind: job.spec.kind,
    state: job.state,
    reason: job.reason,
    replicas: job.spec.replicas,
    gpusPerReplica: job.spec.gpusPerReplica,
    gpuModels: [...job.spec.gpuModels],
    maxPriceMicros: job.spec.maxPricePerGpuHour,
    createdAtMs: job.createdAtMs,
    finishedAtMs: job.finishedAtMs,
    ageS: Math.max(0, Math.round((nowMs - job.createdAtMs) / 1000)),
    spentMicros: job.spent,
    tasks: job.tasks.map((t) => ({
      id: t.id,
      state: t.state,
      agentId: t.agentId,
      region: t.region,
      gpuModel: t.gpuModel,
      gpus: t.gpuIndices.length,
      priceMicros: t.pricePerGpuHour,
      startedAtMs: t.startedAtMs,
    })),
  };
}

/** Waiting jobs oldest first (the queue's order), running ones by start, the last `recent` finished newest first. */
export function jobsView(jobs: readonly Job[], nowMs: number, recent = 20): JobsView {
  const counts: Record<string, number> = {};
  for (const j of jobs) counts[j.state] = (counts[j.state] ?? 0) + 1;
  const byCreated = [...jobs].sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  return {
    queue: byCreated.filter((j) => QUEUED.has(j.state)).map((j) => jobRow(j, nowMs)),
    running: byCreated.filter((j) => ACTIVE.has(j.state)).map((j) => jobRow(j, nowMs)),
    recent: byCreated
      .filter((j) => !QUEUED.has(j.state) && !ACTIVE.has(j.state))
      .sort((a, b) => b.finishedAtMs - a.finishedAtMs || (a.id < b.id ? -1 : 1))
      .slice(0, recent)
      .map((j) => jobRow(j, nowMs)),
    counts,
  };
}

export interface DecisionRow {
  jobId: string;
  tenant: string;
  jobName: string;
  outcome: string;
  profile: string;
  decidedAtMs: number;
  estimatedCostMicros: number;
  candidatesConsidered: number;
  rejections: Record<string, number>;
  chosen: Array<{
    replica: number;
    agentId: string;
    region: string;
    gpuModel: string;
    priceMicros: number;
    score: number;
  }>;
  runnerUp: Array<{ agentId: string; region: string; priceMicros: number; score: number }>;
  summary: string[];
  relaxation: string;
}

export function decisionRow(job: Job, e: Explanation): DecisionRow {
  return {
    jobId: job.id,
    tenant: job.tenant,
    jobName: job.spec.name,
    outcome: e.outcome,
    profile: e.profile,
    decidedAtMs: e.decidedAtMs,
    estimatedCostMicros: e.estimatedCost,
    candidatesConsidered: e.candidatesConsidered,
    rejections: { ...e.rejections },
    chosen: e.chosen.map((p) => ({
      replica: p.replica,
      agentId: p.agentId,
      region: p.region,
      gpuModel: p.gpuModel,
      priceMicros: p.pricePerGpuHour,
      score: p.score,
    })),
    runnerUp: e.runnerUp.map((p) => ({
      agentId: p.agentId,
      region: p.region,
      priceMicros: p.pricePerGpuHour,
      score: p.score,
    })),
    summary: [...e.summary],
    relaxation: e.relaxation,
  };
}

/** The jobs whose decision is most likely recent: the last `n` changed (a decision changes its job). */
export function recentlyChanged(jobs: readonly Job[], n: number): Job[] {
  return [...jobs].sort((a, b) => b.updatedAtMs - a.updatedAtMs || (a.id < b.id ? -1 : 1)).slice(0, n);
}

/** One line of a money chart: cumulative micro-dollars at the end of each bucket. */
export interface MoneySeries {
  name: string;
  points: Array<{ atMs: number; cumulativeMicros: number }>;
  totalMicros: number;
}

/**
 * Ledger entries as cumulative lines over time, one per `group` value, on shared bucket edges from the first entry
 * to `nowMs` (at most `buckets` points a line), so lines of different tenants or providers line up on one axis.
 */
export function moneySeries(
  entries: readonly LedgerEntry[],
  group: (e: LedgerEntry) => string,
  nowMs: number,
  buckets = 60,
  minSpanMs = 10 * 60_000,
): MoneySeries[] {
  if (entries.length === 0) return [];
  let earliest = Number.POSITIVE_INFINITY;
  let end = nowMs;
  for (const e of entries) {
    earliest = Math.min(earliest, e.atMs);
    end = Math.max(end, e.atMs);
  }
  // At least `minSpanMs` of axis, starting before the first entry, so a young ledger still draws a rise from 0.
  const first = Math.min(end - minSpanMs, earliest - 1);
  const width = Math.max(1, Math.ceil((end - first) / buckets));
  const edges = Array.from({ length: buckets + 1 }, (_, i) => first + i * width);
  const byGroup = new Map<string, LedgerEntry[]>();
  for (const e of entries) {
    const g = group(e);
    const list = byGroup.get(g);
    if (list) list.push(e);
    else byGroup.set(g, [e]);
  }
  return [...byGroup.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => {
      const sorted = [...list].sort((a, b) => a.atMs - b.atMs);
      let i = 0;
      let sum = 0;
      const points = edges.map((edge) => {
        while (i < sorted.length && sorted[i]!.atMs <= edge) sum += sorted[i++]!.amount;
        return { atMs: edge, cumulativeMicros: sum };
      });
      return { name, points, totalMicros: sorted.reduce((n, e) => n + e.amount, 0) };
    });
}
