/**
 * The replay: a discrete-event simulation of a trace over a fleet, one policy at a time, each on its own
 * ClusterState. Policies are the real placement engine under a profile, or a baseline placer. Time is the
 * trace's seconds on an injected clock (`startMs` + seconds), so the engine sees the same `nowMs` it would in
 * production; agents never go quiet in a replay, so advert freshness is not checked.
 *
 * Queueing: a job that does not fit waits. Waiting jobs are grouped by shape (everything the engine's hard
 * constraints and preemption look at); within a shape they keep arrival order. A shape that failed stays
 * failed until capacity is released on an agent that could host it, so each release retries only the shapes
 * that agent can serve (Nomad's blocked evaluations, unblocked by node class), oldest head first; a new
 * arrival is tried at once only when no job of its shape is waiting. A job that fits nowhere even on the empty
 * fleet is unplaceable for every policy alike. Preemption (engine profiles with it on) stops the victim's whole
 * job, which is billed for the time it ran and requeued to restart from scratch (traces carry no checkpoints).
 *
 * Deterministic: the same trace, fleet, policies and seed give the same result.
 */
import { costForDuration, type JobSpec, type Micros } from "@capa/domain";
import {
  type AgentView,
  ClusterState,
  MaxHeap,
  mulberry32,
  PlacementEngine,
  type PlacementRequest,
  type Profile,
  seededHash,
} from "@capa/placement";
import { type BaselineName, BaselinePlacer } from "./baselines.js";
import { ReplayConfigError } from "./errors.js";
import { specOf, type TraceJob } from "./trace.js";

/** One job of a replay: when it arrives, how long it runs once started, and what it asks for. */
export interface ReplayJob {
  id: string;
  submitS: number;
  durationS: number;
  spec: JobSpec;
}

/** Trace rows as replay jobs (the trace's duration is also the expected duration the engine prices). */
export function replayJobs(trace: readonly TraceJob[]): ReplayJob[] {
  return trace.map((t) => ({ id: t.id, submitS: t.submitS, durationS: t.durationS, spec: specOf(t) }));
}

export interface PolicySpec {
  /** Report name: "active" for the active profile, a profile's name, or a baseline's label. */
  name: string;
  baseline?: BaselineName;
  /** The engine profile (engine policies only). */
  profile?: Profile;
}

export interface ReplayOptions {
  seed: number;
  /** The injected clock's value at trace second 0 (ms since the epoch). */
  startMs?: number;
  /** GB each replica reads from its data region (egress cost); default 50, the engine profiles' default. */
  dataGb?: number;
  /** Points per policy in the timeline (plots). */
  samples?: number;
}

/** One stretch of a job on the fleet: from placement to completion or preemption. */
export interface Run {
  jobIndex: number;
  startS: number;
  endS: number;
  completed: boolean;
  tasks: Array<{ agentId: string; region: string; gpuModel: string; gpus: number; pricePerGpuHour: Micros }>;
  costMicros: Micros;
}

export interface TimelinePoint {
  t: number;
  queue: number;
  /** Spend rate at t, micro-dollars per hour. */
  rateMicrosPerHour: number;
  cumulativeMicros: number;
}

export interface PolicyResult {
  name: string;
  baseline: boolean;
  /** Jobs that started (at least once). */
  placed: number;
  /** Jobs that ran to completion. */
  completed: number;
  /** Fit nowhere even on the empty fleet (the same jobs for every policy). */
  unplaceable: number;
  /** Still waiting when the trace ran out of events. */
  neverStarted: number;
  costMicros: Micros;
  meanQueueS: number;
  p50QueueS: number;
  p99QueueS: number;
  utilisation: number;
  overPriceCap: number;
  overBudget: number;
  preemptions: number;
  makespanS: number;
  timeline: TimelinePoint[];
  runs: Run[];
  wallMs: number;
}

export interface ReplayResult {
  jobs: number;
  agents: number;
  gpus: number;
  seed: number;
  horizonS: number;
  policies: PolicyResult[];
}

/** Whether an agent could host one replica of `spec` on an empty fleet (hard constraints, capacity aside). */
export function agentCanHost(spec: JobSpec, agent: AgentView, model: string, price: Micros): boolean {
  if (spec.gpuModels.length > 0 && !spec.gpuModels.includes(model)) return false;
  if (spec.regions.length > 0 && !spec.regions.includes(agent.region)) return false;
  if (spec.excludeRegions.includes(agent.region)) return false;
  if (spec.residency !== "" && agent.residency !== spec.residency) return false;
  if (spec.maxPricePerGpuHour > 0 && price > spec.maxPricePerGpuHour) return false;
  const gpus = agent.gpus.filter((g) => g.model === model && g.healthy);
  return gpus.length >= spec.gpusPerReplica && gpus.every((g) => g.vramMib >= spec.minVramMib);
}

/** The price an agent's model is billed at for a spec (interruptible jobs take a lower spot price). */
export function billedPrice(spec: JobSpec, p: AgentView["prices"][number]): Micros {
  const spot = spec.interruptible && p.interruptiblePerHour > 0 && p.interruptiblePerHour < p.onDemandPerHour;
  return spot ? p.interruptiblePerHour : p.onDemandPerHour;
}

function shapeKey(spec: JobSpec): string {
  return [
    spec.kind,
    spec.replicas,
    spec.gpusPerReplica,
    spec.gpuModels.join("|"),
    spec.minVramMib,
    spec.regions.join("|"),
    spec.excludeRegions.join("|"),
    spec.residency,
    spec.maxPricePerGpuHour,
    spec.priority,
    spec.interruptible,
    spec.allowFabricSpanning,
  ].join(";");
}

interface Shape {
  key: string;
  spec: JobSpec;
  /** Waiting job indices, in arrival order (requeued victims go back by index). */
  waiting: number[];
  /** Agents that could host one replica (ids). */
  hosts: Set<string>;
}

interface Running {
  jobIndex: number;
  generation: number;
  endS: number;
  taskIds: string[];
  run: Run;
}

/** A placer as the simulation drives it: engine or baseline behind one interface. */
interface Placer {
  /** Places the job (all replicas) on `state`, committing its allocations; undefined when it does not fit now. */
  place(
    state: ClusterState,
    req: PlacementRequest,
    nowMs: number,
    attempt: number,
  ): { tasks: PlacedTask[]; victimTaskIds: string[] } | undefined;
}

interface PlacedTask {
  taskId: string;
  agentId: string;
  region: string;
  gpuModel: string;
  gpus: number;
  pricePerGpuHour: Micros;
}

function enginePlacer(engine: PlacementEngine, profile: Profile, seed: number): Placer {
  return {
    place(state, req, nowMs, attempt) {
      const plan = engine.place(state, req, {
        nowMs,
        seed: seededHash(seed, req.jobId),
        profile,
        relaxations: false,
        maxAdvertAgeMs: Number.POSITIVE_INFINITY,
      });
      if (plan.outcome !== "placed" && plan.outcome !== "preempting") return undefined;
      const victimTaskIds = plan.preemptions.map((p) => p.taskId);
      for (const id of victimTaskIds) state.removeAllocation(id);
      const tasks = plan.placements.map((p) => {
        const taskId = `${req.jobId}#${attempt}-${p.replica}`;
        state.addAllocation({
          taskId,
          jobId: req.jobId,
          agentId: p.agentId,
          gpuIndices: p.gpuIndices,
          priority: req.spec.priority,
          interruptible: req.spec.interruptible,
          pricePerGpuHour: p.pricePerGpuHour,
          startedAtMs: nowMs,
          lastCheckpointMs: 0,
          gang: req.spec.kind === "training" && req.replicas.length > 1,
        });
        return {
          taskId,
          agentId: p.agentId,
          region: p.region,
          gpuModel: p.gpuModel,
          gpus: req.spec.gpusPerReplica,
          pricePerGpuHour: p.pricePerGpuHour,
        };
      });
      return { tasks, victimTaskIds };
    },
  };
}

function baselinePlacer(name: BaselineName, agents: readonly AgentView[], seed: number): Placer {
  const placer = new BaselinePlacer(name, mulberry32(seed), agents, Number.POSITIVE_INFINITY);
  return {
    place(state, req, nowMs) {
      const placed = placer.place(state, req, nowMs);
      if (!placed) return undefined;
      const tasks = placed.map((p) => {
        const agent = state.agent(p.agentId)!;
        const gpuModel = agent.gpus.find((g) => g.index === p.gpuIndices[0])?.model ?? "";
        return {
          taskId: p.taskId,
          agentId: p.agentId,
          region: p.region,
          gpuModel,
          gpus: req.spec.gpusPerReplica,
          pricePerGpuHour: p.price,
        };
      });
      return { tasks, victimTaskIds: [] };
    },
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Replays `jobs` over `agents` for each policy. */
export function replay(
  jobs: readonly ReplayJob[],
  agents: readonly AgentView[],
  policies: readonly PolicySpec[],
  options: ReplayOptions,
): ReplayResult {
  if (policies.length === 0) throw new ReplayConfigError("no policy to replay: give a profile or a baseline");
  if (agents.length === 0) throw new ReplayConfigError("the fleet has no agents");
  const startMs = options.startMs ?? 1_750_000_000_000;
  const engine = new PlacementEngine();
  const specs = jobs.map((j) => j.spec);
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[a]!.submitS - jobs[b]!.submitS || a - b);
  const t0 = order.length > 0 ? jobs[order[0]!]!.submitS : 0;

  // Which jobs fit at all: the engine on the empty fleet, once per shape, shared by every policy.
  const empty = new ClusterState();
  for (const a of agents) empty.upsertAgent(a);
  const everFits = new Map<string, boolean>();
  const feasible = specs.map((spec, i) => {
    const key = shapeKey(spec);
    let fits = everFits.get(key);
    if (fits === undefined) {
      const plan = engine.place(empty, request(jobs[i]!.id, spec), {
        nowMs: startMs,
        seed: options.seed,
        profile: "cheapest",
        relaxations: false,
        maxAdvertAgeMs: Number.POSITIVE_INFINITY,
      });
      fits = plan.outcome === "placed";
      everFits.set(key, fits);
    }
    return fits;
  });

  const results = policies.map((policy) => {
    const started = performance.now();
    let placer: Placer;
    if (policy.baseline) placer = baselinePlacer(policy.baseline, agents, options.seed);
    else if (policy.profile) placer = enginePlacer(engine, policy.profile, options.seed);
    else throw new ReplayConfigError(`policy ${policy.name} has neither a profile nor a baseline`);
    const result = simulateOne(policy, placer, jobs, specs, order, feasible, agents, startMs, t0, options);
    result.wallMs = Math.round(performance.now() - started);
    return result;
  });
  const horizonS = Math.max(0, ...results.map((r) => r.makespanS));
  const gpus = agents.reduce((n, a) => n + a.gpus.filter((g) => g.healthy).length, 0);
  for (const r of results) {
    const busy = r.runs.reduce((s, run) => s + (run.endS - run.startS) * run.tasks.reduce((n, t) => n + t.gpus, 0), 0);
    r.utilisation = horizonS > 0 && gpus > 0 ? Math.round((busy / (gpus * horizonS)) * 10_000) / 10_000 : 0;
    r.timeline = resample(r.timeline, t0, t0 + horizonS, options.samples ?? 200);
  }
  return { jobs: jobs.length, agents: agents.length, gpus, seed: options.seed, horizonS, policies: results };
}

function request(jobId: string, spec: JobSpec): PlacementRequest {
  return { jobId, spec, replicas: Array.from({ length: spec.replicas }, (_, i) => i) };
}

function simulateOne(
  policy: PolicySpec,
  placer: Placer,
  jobs: readonly ReplayJob[],
  specs: readonly JobSpec[],
  order: readonly number[],
  feasible: readonly boolean[],
  agents: readonly AgentView[],
  startMs: number,
  t0: number,
  options: ReplayOptions,
): PolicyResult {
  const dataGb = options.dataGb ?? 50;
  const engineTables = new PlacementEngine().tables;
  const state = new ClusterState();
  for (const a of agents) state.upsertAgent(a);
  const shapes = new Map<string, Shape>();
  const shapeOfJob = new Array<Shape | undefined>(jobs.length);
  const shapeOf = (i: number): Shape => {
    const known = shapeOfJob[i];
    if (known) return known;
    const spec = specs[i]!;
    const key = shapeKey(spec);
    let s = shapes.get(key);
    if (!s) {
      const hosts = new Set<string>();
      for (const a of agents) {
        if (a.prices.some((p) => agentCanHost(spec, a, p.gpuModel, billedPrice(spec, p)))) hosts.add(a.id);
      }
      s = { key, spec, waiting: [], hosts };
      shapes.set(key, s);
    }
    shapeOfJob[i] = s;
    return s;
  };
  // Running jobs by end time: a max-heap on -endS (ties in start order). A preempted job's entry stays and is
  // skipped when it comes up (its generation moved on).
  const heap = new MaxHeap<Running>();
  const generation = new Array<number>(jobs.length).fill(0);
  const firstStart = new Array<number>(jobs.length).fill(-1);
  const attempts = new Array<number>(jobs.length).fill(0);
  const runningByJob = new Map<number, Running>();
  const jobOfTask = new Map<string, number>();
  const runs: Run[] = [];
  const timeline: TimelinePoint[] = [];
  let queued = 0;
  let rate = 0;
  let cumulative = 0;
  let lastT = t0;
  let preemptions = 0;
  let unplaceable = 0;
  let now = t0;

  const accrue = (t: number) => {
    cumulative += (rate * (t - lastT)) / 3600;
    lastT = t;
  };
  const record = (t: number) =>
    timeline.push({ t, queue: queued, rateMicrosPerHour: rate, cumulativeMicros: cumulative });

  const finish = (r: Running, t: number, completed: boolean) => {
    accrue(t);
    for (const id of r.taskIds) {
      state.removeAllocation(id);
      jobOfTask.delete(id);
    }
    runningByJob.delete(r.jobIndex);
    r.run.endS = t;
    r.run.completed = completed;
    const seconds = t - r.run.startS;
    for (const task of r.run.tasks) {
      r.run.costMicros += costForDuration(task.pricePerGpuHour, task.gpus, seconds);
      rate -= task.pricePerGpuHour * task.gpus;
    }
    runs.push(r.run);
    generation[r.jobIndex]!++;
  };

  const enqueue = (i: number) => {
    const s = shapeOf(i);
    // Sorted insert by index keeps arrival order (indices follow submit order within a shape via `order`).
    const w = s.waiting;
    let lo = 0;
    let hi = w.length;
    const rank = rankOf[i]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (rankOf[w[mid]!]! < rank) lo = mid + 1;
      else hi = mid;
    }
    w.splice(lo, 0, i);
    queued++;
  };

  const rankOf = new Array<number>(jobs.length);
  order.forEach((i, r) => {
    rankOf[i] = r;
  });

  /** Tries job i now; on success it runs. Returns the agents freed by preemption. */
  const tryPlace = (i: number): { ok: boolean; freed: string[] } => {
    const spec = specs[i]!;
    const nowMs = startMs + Math.round(now * 1000);
    const out = placer.place(state, request(jobs[i]!.id, spec), nowMs, attempts[i]!);
    if (!out) return { ok: false, freed: [] };
    attempts[i]!++;
    const freed: string[] = [];
    // Victims: their whole job stops, is billed for what it ran and waits again.
    const victimJobs = new Set<number>();
    for (const id of out.victimTaskIds) {
      const j = jobOfTask.get(id);
      if (j !== undefined) victimJobs.add(j);
    }
    for (const j of [...victimJobs].sort((a, b) => a - b)) {
      const r = runningByJob.get(j)!;
      preemptions += r.taskIds.length;
      for (const task of r.run.tasks) freed.push(task.agentId);
      // The engine already released the tasks it named; release the rest of the job's tasks here.
      finish(r, now, false);
      enqueue(j);
    }
    accrue(now);
    const run: Run = {
      jobIndex: i,
      startS: now,
      endS: now,
      completed: false,
      tasks: out.tasks.map((t) => ({
        agentId: t.agentId,
        region: t.region,
        gpuModel: t.gpuModel,
        gpus: t.gpus,
        pricePerGpuHour: t.pricePerGpuHour,
      })),
      costMicros: 0,
    };
    for (const t of out.tasks) {
      rate += t.pricePerGpuHour * t.gpus;
      jobOfTask.set(t.taskId, i);
      if (spec.dataRegion !== "") {
        const egress = Math.round(dataGb * engineTables.egressMicrosPerGb(spec.dataRegion, t.region));
        run.costMicros += egress;
        cumulative += egress;
      }
    }
    if (firstStart[i]! < 0) firstStart[i] = now;
    const entry: Running = {
      jobIndex: i,
      generation: generation[i]!,
      endS: now + jobs[i]!.durationS,
      taskIds: out.tasks.map((t) => t.taskId),
      run,
    };
    runningByJob.set(i, entry);
    heap.push(-entry.endS, entry);
    return { ok: true, freed };
  };

  /** Retries waiting shapes that any of `agentIds` could host, oldest head first, each until it fails. */
  const pass = (agentIds: Set<string>) => {
    for (let round = 0; agentIds.size > 0 && round < 1000; round++) {
      const candidates = [...shapes.values()].filter(
        (s) => s.waiting.length > 0 && [...agentIds].some((id) => s.hosts.has(id)),
      );
      candidates.sort((a, b) => rankOf[a.waiting[0]!]! - rankOf[b.waiting[0]!]!);
      const next = new Set<string>();
      for (const s of candidates) {
        while (s.waiting.length > 0) {
          const i = s.waiting[0]!;
          const { ok, freed } = tryPlace(i);
          if (!ok) break;
          s.waiting.shift();
          queued--;
          for (const id of freed) next.add(id);
        }
      }
      agentIds = next;
    }
  };

  let k = 0;
  // Bounded: every iteration consumes an arrival or a completion, and completions are finite (each placement
  // adds one; preemption needs a higher-priority job, so restarts are bounded by the priority levels).
  while (k < order.length || heap.size > 0) {
    const nextArrival = k < order.length ? jobs[order[k]!]!.submitS : Number.POSITIVE_INFINITY;
    const nextEnd = heap.size > 0 ? -heap.peekKey() : Number.POSITIVE_INFINITY;
    if (!Number.isFinite(nextArrival) && !Number.isFinite(nextEnd)) break;
    now = Math.min(nextArrival, nextEnd);
    const released = new Set<string>();
    while (heap.size > 0 && -heap.peekKey() <= now) {
      const r = heap.pop()!;
      if (generation[r.jobIndex] !== r.generation) continue;
      for (const task of r.run.tasks) released.add(task.agentId);
      finish(r, now, true);
    }
    if (released.size > 0) pass(released);
    while (k < order.length && jobs[order[k]!]!.submitS <= now) {
      const i = order[k++]!;
      if (!feasible[i]) {
        unplaceable++;
        continue;
      }
      const s = shapeOf(i);
      if (s.waiting.length === 0) {
        const { ok, freed } = tryPlace(i);
        if (ok) {
          if (freed.length > 0) pass(new Set(freed));
          continue;
        }
      }
      enqueue(i);
    }
    accrue(now);
    record(now);
  }

  const delays: number[] = [];
  let placed = 0;
  let overPriceCap = 0;
  let overBudget = 0;
  const costByJob = new Array<number>(jobs.length).fill(0);
  for (const run of runs) costByJob[run.jobIndex]! += run.costMicros;
  const capped = new Set<number>();
  for (const run of runs) {
    const cap = specs[run.jobIndex]!.maxPricePerGpuHour;
    if (cap > 0 && run.tasks.some((t) => t.pricePerGpuHour > cap)) capped.add(run.jobIndex);
  }
  overPriceCap = capped.size;
  for (let i = 0; i < jobs.length; i++) {
    if (firstStart[i]! < 0) continue;
    placed++;
    delays.push(firstStart[i]! - jobs[i]!.submitS);
    const budget = specs[i]!.budget;
    if (budget > 0 && costByJob[i]! > budget) overBudget++;
  }
  delays.sort((a, b) => a - b);
  const cost = runs.reduce((s, r) => s + r.costMicros, 0);
  const makespan = runs.reduce((m, r) => Math.max(m, r.endS), t0) - t0;
  return {
    name: policy.name,
    baseline: policy.baseline !== undefined,
    placed,
    completed: runs.filter((r) => r.completed).length,
    unplaceable,
    neverStarted: queued,
    costMicros: cost,
    meanQueueS: round2(delays.reduce((s, d) => s + d, 0) / Math.max(1, delays.length)),
    p50QueueS: round2(quantile(delays, 0.5)),
    p99QueueS: round2(quantile(delays, 0.99)),
    utilisation: 0,
    overPriceCap,
    overBudget,
    preemptions,
    makespanS: makespan,
    timeline,
    runs,
    wallMs: 0,
  };
}

/** The timeline at `samples` evenly spaced instants: the state after the last event at or before each. */
function resample(points: readonly TimelinePoint[], from: number, to: number, samples: number): TimelinePoint[] {
  if (points.length === 0 || samples < 2 || to <= from) return [...points];
  const out: TimelinePoint[] = [];
  let j = 0;
  for (let s = 0; s < samples; s++) {
    const t = from + ((to - from) * s) / (samples - 1);
    while (j + 1 < points.length && points[j + 1]!.t <= t) j++;
    const p = points[j]!;
    const extra = p.t <= t ? (p.rateMicrosPerHour * (t - p.t)) / 3600 : 0;
    out.push({
      t,
      queue: p.queue,
      rateMicrosPerHour: p.rateMicrosPerHour,
      cumulativeMicros: p.cumulativeMicros + extra,
    });
  }
  return out;
}
