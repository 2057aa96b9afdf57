/**
 * Cost quality, on instances small enough for an exact LP. A fleet of 150 agents at real catalog prices; jobs
 * from the traces arrive one by one (Poisson, at an offered load of 60% of the GPUs by default) and hold their
 * GPUs for their trace duration (capped at a day), then leave. A job that cannot be placed on arrival is
 * turned away (no queue), for every placer alike. The engine (profile "cheapest", no preemption) and the four
 * baselines each run the same arrivals on their own copy of the fleet.
 * - costToLpBound = our total cost ÷ the LP bound for the jobs we placed. The LP (HiGHS) assigns each job to
 *   resource classes fractionally, subject to class capacity at sampled instants (every sampled instant's
 *   active jobs must fit). Any subset of instants gives a valid lower bound: our schedule is one feasible
 *   point of that LP, so the ratio is ≥ 1 by construction, and the sampling only makes the bound weaker.
 * - costVsBaseline[b] = our cost ÷ b's cost, over the jobs both placed (< 1 = we are cheaper).
 */
import { costForDuration, type JobSpec } from "@capa/domain";
import {
  type AgentView,
  BUILTIN_PROFILES,
  ClusterState,
  DEFAULT_TABLES,
  mulberry32,
  PlacementEngine,
  type PlacementRequest,
} from "@capa/placement";
import {
  activeIndices,
  agentCanHost,
  BASELINES,
  type BaselineName,
  BaselinePlacer,
  COST_BLIND_BASELINES,
  lpBound,
  maximalInstants,
  resourceClasses,
} from "@capa/replay";
import type { DataSet } from "./data.js";
import { makeFleet, NOW } from "./fleet.js";
import { gangJob, gpuPods, podJob, type Workload } from "./workload.js";

/** The engine's default assumption for data read per replica (profile defaultDataGb). */
const DATA_GB = 50;
const MAX_DURATION_S = 24 * 3600;

export interface CostResult {
  instances: number;
  costToLpBound: number;
  costVsBaseline: Record<BaselineName, number>;
  /** costVsBaseline over jobs without placement constraints only. */
  costVsBaselineUnconstrained: Record<BaselineName, number>;
  load: number;
  agentsPerInstance: number;
  jobs: number;
  placed: Record<"ours" | BaselineName, number>;
  cheapestSingleRegionFallbacks: number;
  /** Largest LP solved: columns, rows, nonzeros. */
  lpSize: { columns: number; rows: number; nonzeros: number };
  lpSeconds: number;
  /**
   * Per cost-blind baseline (with the LP): the LP bound on that baseline's own placed jobs at their times ÷ its
   * cost. 1 − this is the most any placer could save on the same work: the economics goal's ceiling.
   */
  oracleVsBaseline: Partial<Record<BaselineName, number>>;
}

/** What one replica costs on an agent at a price: GPU-time for the expected duration + egress of its data. */
export function replicaCost(spec: JobSpec, price: number, region: string): number {
  const seconds = spec.expectedDurationSeconds > 0 ? spec.expectedDurationSeconds : 3600;
  const egress =
    spec.dataRegion === "" ? 0 : Math.round(DATA_GB * DEFAULT_TABLES.egressMicrosPerGb(spec.dataRegion, region));
  return costForDuration(price, spec.gpusPerReplica, seconds) + egress;
}

export interface Arrival {
  req: PlacementRequest;
  at: number;
  end: number;
}

export function arrivals(
  w: Workload,
  data: DataSet,
  agents: readonly AgentView[],
  count: number,
  load: number,
): Arrival[] {
  const capacity = agents.reduce((n, a) => n + a.gpus.length, 0);
  const pods = gpuPods(data);
  const reqs: PlacementRequest[] = [];
  for (let i = 0; i < count; i++) {
    const roll = w.rng();
    const id = `c${i}`;
    // Inference is left out: the engine pins its replicas to demand regions (latency), which the baselines
    // do not model, so their costs would not be for the same service.
    const req = roll < 0.03 ? gangJob(w, id, data, 2, 8) : podJob(w, id, pods[Math.floor(w.rng() * pods.length)]!);
    req.spec.expectedDurationSeconds = Math.min(req.spec.expectedDurationSeconds, MAX_DURATION_S);
    reqs.push(req);
  }
  // Little's law: arrival rate such that the expected busy GPUs are `load` of the fleet.
  const work = reqs.reduce((s, r) => s + r.spec.replicas * r.spec.gpusPerReplica * r.spec.expectedDurationSeconds, 0);
  const rate = (load * capacity * reqs.length) / work;
  let t = 0;
  return reqs.map((req) => {
    t += -Math.log(1 - w.rng()) / rate;
    return { req, at: t, end: t + req.spec.expectedDurationSeconds };
  });
}

/** Runs the arrivals through one placer; returns the cost of each job it placed. */
function simulate(
  agents: readonly AgentView[],
  jobs: readonly Arrival[],
  placeOne: (state: ClusterState, req: PlacementRequest, i: number) => { taskIds: string[]; cost: number } | undefined,
): Map<string, number> {
  const state = new ClusterState();
  for (const a of agents) state.upsertAgent(a);
  const running: Array<{ end: number; taskIds: string[] }> = [];
  const costs = new Map<string, number>();
  jobs.forEach((job, i) => {
    for (let k = running.length - 1; k >= 0; k--) {
      if (running[k]!.end <= job.at) {
        for (const id of running[k]!.taskIds) state.removeAllocation(id);
        running.splice(k, 1);
      }
    }
    const placed = placeOne(state, job.req, i);
    if (!placed) return;
    costs.set(job.req.jobId, placed.cost);
    running.push({ end: job.end, taskIds: placed.taskIds });
  });
  return costs;
}

export interface CostOptions {
  instances: number;
  agentsPerInstance: number;
  jobsPerInstance: number;
  seed: number;
  /** Offered load: expected busy share of the fleet's GPUs. */
  load: number;
  /** Solve the LP bound (the slow part). */
  lp: boolean;
}

export async function runCost(data: DataSet, o: CostOptions): Promise<CostResult> {
  const { instances, agentsPerInstance, jobsPerInstance, seed } = o;
  const engine = new PlacementEngine();
  const cheapest = BUILTIN_PROFILES.find((p) => p.name === "cheapest")!;
  engine.upsertProfile({ ...cheapest, name: "bench-cost", preemption: false });
  let ours = 0;
  let lp = 0;
  const lpSize = { columns: 0, rows: 0, nonzeros: 0 };
  let lpNanos = 0n;
  let totalJobs = 0;
  let fallbacks = 0;
  const oursCommon: Record<string, number> = {};
  const baseCommon: Record<string, number> = {};
  // The same over jobs without placement constraints (no model list, memory floor, regions, residency, cap).
  const oursFree: Record<string, number> = {};
  const baseFree: Record<string, number> = {};
  const placed: Record<string, number> = { ours: 0 };
  const oracle: Record<string, number> = {};
  const baseTotal: Record<string, number> = {};
  for (let k = 0; k < instances; k++) {
    const rng = mulberry32(seed + k);
    const agents = makeFleet(agentsPerInstance, data, rng);
    const w: Workload = {
      regions: [...new Set(agents.map((a) => a.region))].sort(),
      models: [...new Set(agents.flatMap((a) => a.gpus.map((g) => g.model)))].sort(),
      rng,
    };
    const jobs = arrivals(w, data, agents, jobsPerInstance, o.load);
    totalJobs += jobs.length;

    const ourCost = simulate(agents, jobs, (state, req, i) => {
      const plan = engine.place(state, req, { nowMs: NOW, seed: i, profile: "bench-cost", relaxations: false });
      if (plan.outcome !== "placed") return undefined;
      let cost = 0;
      const taskIds: string[] = [];
      for (const p of plan.placements) {
        const taskId = `${req.jobId}-${p.replica}`;
        state.addAllocation({
          taskId,
          jobId: req.jobId,
          agentId: p.agentId,
          gpuIndices: p.gpuIndices,
          priority: 0,
          interruptible: req.spec.interruptible,
          pricePerGpuHour: p.pricePerGpuHour,
          startedAtMs: NOW,
          lastCheckpointMs: 0,
        });
        taskIds.push(taskId);
        cost += replicaCost(req.spec, p.pricePerGpuHour, p.region);
      }
      if (cost !== plan.explanation.estimatedCost) throw new Error(`cost mismatch on ${req.jobId}`);
      return { taskIds, cost };
    });
    placed.ours! += ourCost.size;
    ours += [...ourCost.values()].reduce((a, b) => a + b, 0);

    // LP bound over the jobs we placed (lpOf).
    const placedJobs = jobs.filter((j) => ourCost.has(j.req.jobId));
    if (o.lp) {
      const lpStart = process.hrtime.bigint();
      const bound = await lpOf(placedJobs, agents);
      if (bound.highs === undefined) throw new Error("LP infeasible for jobs the engine placed: the bound is wrong");
      lp += bound.highs;
      lpNanos += process.hrtime.bigint() - lpStart;
      if (bound.nonzeros > lpSize.nonzeros)
        Object.assign(lpSize, { columns: bound.columns, rows: bound.rows, nonzeros: bound.nonzeros });
    }

    for (const name of BASELINES) {
      const placer = new BaselinePlacer(name, mulberry32(seed + k + 1000), agents);
      const costs = simulate(agents, jobs, (state, req) => {
        const ps = placer.place(state, req, NOW);
        if (!ps) return undefined;
        return {
          taskIds: ps.map((p) => p.taskId),
          cost: ps.reduce((s, p) => s + replicaCost(req.spec, p.price, p.region), 0),
        };
      });
      placed[name] = (placed[name] ?? 0) + costs.size;
      if (o.lp && COST_BLIND_BASELINES.includes(name)) {
        // The oracle on this baseline's own work: its placed jobs at their times, placed as cheaply as the LP can.
        const bound = await lpOf(
          jobs.filter((j) => costs.has(j.req.jobId)),
          agents,
        );
        if (bound.highs === undefined) throw new Error(`LP infeasible for jobs ${name} placed: the bound is wrong`);
        oracle[name] = (oracle[name] ?? 0) + bound.highs;
        baseTotal[name] = (baseTotal[name] ?? 0) + [...costs.values()].reduce((a, b) => a + b, 0);
      }
      for (const job of jobs) {
        const mine = ourCost.get(job.req.jobId);
        const theirs = costs.get(job.req.jobId);
        if (mine === undefined || theirs === undefined) continue;
        oursCommon[name] = (oursCommon[name] ?? 0) + mine;
        baseCommon[name] = (baseCommon[name] ?? 0) + theirs;
        if (!constrained(job.req.spec)) {
          oursFree[name] = (oursFree[name] ?? 0) + mine;
          baseFree[name] = (baseFree[name] ?? 0) + theirs;
        }
      }
      if (name === "cheapestSingleRegion") fallbacks += placer.fallbacks;
    }
  }
  const ratio = (a: number, b: number) => Math.round((a / b) * 10_000) / 10_000;
  return {
    instances,
    costToLpBound: o.lp ? ratio(ours, lp) : Number.NaN,
    costVsBaseline: Object.fromEntries(
      BASELINES.map((b) => [b, ratio(oursCommon[b] ?? 0, baseCommon[b] ?? 1)]),
    ) as Record<BaselineName, number>,
    costVsBaselineUnconstrained: Object.fromEntries(
      BASELINES.map((b) => [b, ratio(oursFree[b] ?? 0, baseFree[b] ?? 1)]),
    ) as Record<BaselineName, number>,
    load: o.load,
    agentsPerInstance,
    jobs: totalJobs,
    placed: placed as Record<"ours" | BaselineName, number>,
    cheapestSingleRegionFallbacks: fallbacks,
    lpSize,
    lpSeconds: Math.round(Number(lpNanos) / 1e7) / 100,
    oracleVsBaseline: Object.fromEntries(
      Object.keys(oracle).map((b) => [b, ratio(oracle[b]!, baseTotal[b]!)]),
    ) as Partial<Record<BaselineName, number>>,
  };
}

/**
 * The LP bound of placing exactly these jobs at their times. Capacity is checked at every instant where the
 * set of running jobs is maximal (an arrival followed by a departure): those dominate every other instant, so
 * the bound is exact for the interval structure, not a sample.
 */
async function lpOf(placedJobs: readonly Arrival[], agents: readonly AgentView[]) {
  const instants = maximalInstants(placedJobs);
  return lpBound(
    placedJobs.map((j) => ({
      spec: j.req.spec,
      replicas: j.req.replicas.length,
      activeAt: activeIndices(instants, j.at, j.end),
      costOn: (agent: AgentView, model: string, price: number) =>
        agentCanHost(j.req.spec, agent, model, price) ? replicaCost(j.req.spec, price, agent.region) : undefined,
    })),
    resourceClasses(agents, NOW),
    instants.length,
  );
}

function constrained(spec: JobSpec): boolean {
  return (
    spec.gpuModels.length > 0 ||
    spec.minVramMib > 0 ||
    spec.regions.length > 0 ||
    spec.residency !== "" ||
    spec.maxPricePerGpuHour > 0
  );
}
