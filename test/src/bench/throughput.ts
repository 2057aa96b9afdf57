/**
 * Decision throughput on one core: a fleet in steady state (about 60% of GPUs busy: half the machines held
 * whole by background work, plus the benchmark's own placements, released oldest first); single-GPU jobs from the
 * trace, then, on a fresh copy of the fleet, 8 × 8 training gangs. Only `engine.place` is timed; applying the
 * plan (what the scheduler does after committing it) is not. Every decision counts, placed or not (a pending
 * or unplaceable job costs a full search, plus a relaxation search when unplaceable).
 */
import {
  type AgentView,
  ClusterState,
  mulberry32,
  type PlacementEngine,
  type PlacementRequest,
  type Plan,
} from "@capa/placement";
import type { DataSet } from "./data.js";
import { makeFleet, NOW } from "./fleet.js";
import { gangJob, podJob, singleGpuPods, type Workload } from "./workload.js";

export interface ThroughputRun {
  agents: number;
  placementsPerSec: number;
  p50DecisionMicros: number;
  p99DecisionMicros: number;
  gangPlacementsPerSec: number;
  /** Share of single-GPU decisions that placed (the rest: pending/unplaceable, with relaxation search). */
  singlePlacedShare: number;
  gangPlacedShare: number;
  gangP99DecisionMicros: number;
  buildMillis: number;
}

const TARGET_UTILISATION = 0.6;

class SteadyState {
  /** The benchmark's placed jobs, oldest first; a job is released whole (a gang never half-finishes). */
  private readonly queue: Array<{ taskIds: string[]; gpus: number }> = [];
  private head = 0;
  busy = 0;
  readonly total: number;

  constructor(
    readonly state: ClusterState,
    agents: readonly AgentView[],
    rng: () => number,
    backgroundShare: number,
  ) {
    this.total = agents.reduce((n, a) => n + a.gpus.length, 0);
    // Background work holds whole machines for the whole run; only the benchmark's own placements churn.
    for (const a of agents) {
      if (rng() >= backgroundShare) continue;
      this.add(
        `bg-${a.id}`,
        "bg",
        a.id,
        a.gpus.map((g) => g.index),
        0,
      );
    }
  }

  apply(req: PlacementRequest, plan: Plan): void {
    for (const p of plan.preemptions) this.state.removeAllocation(p.taskId);
    const job = { taskIds: [] as string[], gpus: 0 };
    for (const p of plan.placements) {
      const taskId = `${req.jobId}-${p.replica}`;
      this.add(taskId, req.jobId, p.agentId, p.gpuIndices, p.pricePerGpuHour);
      job.taskIds.push(taskId);
      job.gpus += p.gpuIndices.length;
    }
    if (job.taskIds.length > 0) this.queue.push(job);
    // Time passes: the oldest job finishes whenever the fleet is over its target, and also after a job found
    // no room (else a fleet full of gangs below the target would never free a domain again).
    const release = () => {
      const oldest = this.queue[this.head++]!;
      for (const taskId of oldest.taskIds) this.state.removeAllocation(taskId);
      this.busy -= oldest.gpus;
    };
    if (job.taskIds.length === 0 && this.head < this.queue.length) release();
    while (this.busy > TARGET_UTILISATION * this.total && this.head < this.queue.length) release();
  }

  private add(taskId: string, jobId: string, agentId: string, gpuIndices: number[], price: number): void {
    this.state.addAllocation({
      taskId,
      jobId,
      agentId,
      gpuIndices,
      priority: 0,
      interruptible: false,
      pricePerGpuHour: price,
      startedAtMs: NOW,
      lastCheckpointMs: 0,
    });
    this.busy += gpuIndices.length;
  }
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function timeDecisions(
  engine: PlacementEngine,
  steady: SteadyState,
  jobs: PlacementRequest[],
  warmup: number,
): { perSec: number; p50: number; p99: number; placedShare: number } {
  const micros: number[] = [];
  let totalNanos = 0n;
  let placed = 0;
  jobs.forEach((req, i) => {
    const t0 = process.hrtime.bigint();
    const plan = engine.place(steady.state, req, { nowMs: NOW, seed: i });
    const dt = process.hrtime.bigint() - t0;
    if (i >= warmup) {
      totalNanos += dt;
      micros.push(Number(dt) / 1000);
      if (plan.outcome === "placed") placed++;
    }
    steady.apply(req, plan);
  });
  micros.sort((a, b) => a - b);
  const measured = jobs.length - warmup;
  return {
    perSec: measured / (Number(totalNanos) / 1e9),
    p50: percentile(micros, 0.5),
    p99: percentile(micros, 0.99),
    placedShare: placed / measured,
  };
}

export function runThroughput(
  engine: PlacementEngine,
  size: number,
  data: DataSet,
  seed: number,
  decisions: number,
  gangDecisions: number,
): ThroughputRun {
  const rng = mulberry32(seed);
  const agents = makeFleet(size, data, rng);
  const t0 = process.hrtime.bigint();
  const state = new ClusterState();
  for (const a of agents) state.upsertAgent(a);
  const buildMillis = Number(process.hrtime.bigint() - t0) / 1e6;
  const steady = new SteadyState(state, agents, rng, 0.5);

  const w: Workload = {
    regions: [...new Set(agents.map((a) => a.region))].sort(),
    models: [...new Set(agents.flatMap((a) => a.gpus.map((g) => g.model)))].sort(),
    rng,
  };
  const pods = singleGpuPods(data);
  const warmup = Math.min(1000, Math.floor(decisions / 5));
  const singles = Array.from({ length: decisions + warmup }, (_, i) =>
    podJob(w, `s${i}`, pods[Math.floor(rng() * pods.length)]!),
  );
  const single = timeDecisions(engine, steady, singles, warmup);

  const gangWarmup = gangDecisions === 0 ? 0 : Math.min(200, Math.floor(gangDecisions / 5));
  const gangs = Array.from({ length: gangDecisions + gangWarmup }, (_, i) => gangJob(w, `g${i}`, data, 8, 8));
  // Gangs get their own copy of the fleet (a training cluster: 30% of machines busy with background work, then
  // gangs up to 60% of GPUs, oldest released first), so the figure is about gang decisions, not about single
  // jobs fragmenting 8-GPU machines.
  const gangState = new ClusterState();
  for (const a of agents) gangState.upsertAgent(a);
  const gang = timeDecisions(engine, new SteadyState(gangState, agents, rng, 0.3), gangs, gangWarmup);

  return {
    agents: size,
    placementsPerSec: Math.round(single.perSec),
    p50DecisionMicros: round1(single.p50),
    p99DecisionMicros: round1(single.p99),
    gangPlacementsPerSec: Math.round(gang.perSec),
    singlePlacedShare: round3(single.placedShare),
    gangPlacedShare: round3(gang.placedShare),
    gangP99DecisionMicros: round1(gang.p99),
    buildMillis: Math.round(buildMillis),
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;
