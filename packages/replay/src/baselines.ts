/**
 * Baseline placers for the cost comparison. Each honours exactly the engine's hard constraints (model, memory,
 * regions, residency, price cap, freshness, draining, capacity, gangs whole inside one region, model and fabric
 * domain) and differs only in how it chooses among feasible agents:
 * - firstFit: the first agent by id (ids are shuffled, so blind to price) — a cost-blind queue scheduler;
 * - random: uniformly at random (seeded);
 * - spread: the agent with the most free GPUs (Kubernetes' LeastAllocated) — cost-blind load spreading;
 * - cheapestSingleRegion: the cheapest agent, but only in one "home" region (the job's data region, else the
 *   largest region it may use): a cost-aware scheduler of a single-region cluster, no cross-region brokering.
 *   If the home region cannot host the job it falls back to the cheapest anywhere (counted).
 */
import { type JobSpec, residencyOfRegion } from "@capa/domain";
import { type AgentView, type ClusterState, fabricKeyOf, type PlacementRequest } from "@capa/placement";

export type BaselineName = "firstFit" | "random" | "spread" | "cheapestSingleRegion";
export const BASELINES: readonly BaselineName[] = ["firstFit", "random", "spread", "cheapestSingleRegion"];
/** The cost-blind ones: the economics goal is measured against each of them. */
export const COST_BLIND_BASELINES: readonly BaselineName[] = ["firstFit", "random", "spread"];
/** Command-line and report names (kebab-case) of the baselines. */
export const BASELINE_LABELS: Readonly<Record<BaselineName, string>> = {
  firstFit: "first-fit",
  random: "random",
  spread: "spread",
  cheapestSingleRegion: "cheapest-single-region",
};

export interface Slot {
  agent: AgentView;
  model: string;
  price: number;
  interruptible: boolean;
  free: number;
}

export interface BaselinePlacement {
  taskId: string;
  agentId: string;
  region: string;
  gpuIndices: number[];
  price: number;
}

/** The engine's default freshness limit for adverts (filter "stale-advert"). */
export const MAX_ADVERT_AGE_MS = 30_000;

/** Every (agent, model) that passes the job's hard constraints and has room for one replica now. */
export function feasibleSlots(
  state: ClusterState,
  spec: JobSpec,
  nowMs: number,
  maxAdvertAgeMs = MAX_ADVERT_AGE_MS,
): Slot[] {
  const out: Slot[] = [];
  for (const agent of state.agents()) {
    if (agent.draining || nowMs - agent.lastSeenMs > maxAdvertAgeMs) continue;
    if (spec.regions.length > 0 && !spec.regions.includes(agent.region)) continue;
    if (spec.excludeRegions.includes(agent.region)) continue;
    if (spec.residency !== "" && agent.residency !== spec.residency) continue;
    const free = state.freeGpuIndices(agent.id);
    for (const p of agent.prices) {
      if (spec.gpuModels.length > 0 && !spec.gpuModels.includes(p.gpuModel)) continue;
      const gpus = agent.gpus.filter((g) => g.model === p.gpuModel && g.healthy);
      if (gpus.length === 0 || gpus.some((g) => g.vramMib < spec.minVramMib)) continue;
      const spot = spec.interruptible && p.interruptiblePerHour > 0 && p.interruptiblePerHour < p.onDemandPerHour;
      const price = spot ? p.interruptiblePerHour : p.onDemandPerHour;
      if (spec.maxPricePerGpuHour > 0 && price > spec.maxPricePerGpuHour) continue;
      const freeOfModel = free.filter((i) => gpus.some((g) => g.index === i)).length;
      if (freeOfModel < spec.gpusPerReplica) continue;
      out.push({ agent, model: p.gpuModel, price, interruptible: spot, free: freeOfModel });
    }
  }
  return out;
}

export class BaselinePlacer {
  fallbacks = 0;
  private readonly regionSize = new Map<string, number>();

  constructor(
    readonly name: BaselineName,
    private readonly rng: () => number,
    agents: readonly AgentView[],
    /** Adverts older than this are skipped; a replay, whose agents never go quiet, passes Infinity. */
    private readonly maxAdvertAgeMs = MAX_ADVERT_AGE_MS,
  ) {
    for (const a of agents) this.regionSize.set(a.region, (this.regionSize.get(a.region) ?? 0) + a.gpus.length);
  }

  /** Places every replica (all or nothing) and commits the allocations to `state`; undefined if it cannot. */
  place(state: ClusterState, req: PlacementRequest, nowMs: number): BaselinePlacement[] | undefined {
    const spec = req.spec;
    const placed: BaselinePlacement[] = [];
    const gang = spec.kind === "training" && req.replicas.length > 1;
    const gangKey = (s: Slot) => `${s.agent.region}|${s.model}|${spec.allowFabricSpanning ? "" : fabricKeyOf(s.agent)}`;
    let groupKey: string | undefined;
    if (gang) {
      const slots = feasibleSlots(state, spec, nowMs, this.maxAdvertAgeMs);
      const groups = new Map<string, Slot[]>();
      for (const s of slots) groups.set(gangKey(s), [...(groups.get(gangKey(s)) ?? []), s]);
      const fits = [...groups.entries()].filter(
        ([, g]) => g.reduce((n, s) => n + Math.floor(s.free / spec.gpusPerReplica), 0) >= req.replicas.length,
      );
      if (fits.length === 0) return undefined;
      if (this.name === "random") groupKey = fits[Math.floor(this.rng() * fits.length)]![0];
      else {
        const firstOf = (g: Slot[]) => this.choose(g, spec)!;
        const pickGroup = fits
          .map(([key, g]) => ({ key, best: firstOf(g) }))
          .reduce((a, b) => (this.prefer(b.best, a.best, spec) ? b : a));
        groupKey = pickGroup.key;
      }
    }
    for (const _replica of req.replicas) {
      let slots = feasibleSlots(state, spec, nowMs, this.maxAdvertAgeMs);
      if (groupKey !== undefined) slots = slots.filter((s) => gangKey(s) === groupKey);
      const slot = this.choose(slots, spec);
      if (!slot) {
        for (const p of placed) state.removeAllocation(p.taskId);
        return undefined;
      }
      const indices = state
        .freeGpuIndices(slot.agent.id)
        .filter((i) => slot.agent.gpus.some((g) => g.index === i && g.model === slot.model))
        .slice(0, spec.gpusPerReplica);
      const taskId = `${req.jobId}-${slot.agent.id}-${indices[0]}`;
      state.addAllocation({
        taskId,
        jobId: req.jobId,
        agentId: slot.agent.id,
        gpuIndices: indices,
        priority: spec.priority,
        interruptible: spec.interruptible,
        pricePerGpuHour: slot.price,
        startedAtMs: nowMs,
        lastCheckpointMs: 0,
      });
      placed.push({
        taskId,
        agentId: slot.agent.id,
        region: slot.agent.region,
        gpuIndices: indices,
        price: slot.price,
      });
    }
    return placed;
  }

  private home(spec: JobSpec): string | undefined {
    const allowed = (r: string) =>
      (spec.regions.length === 0 || spec.regions.includes(r)) &&
      !spec.excludeRegions.includes(r) &&
      (spec.residency === "" || residencyOfRegion(r) === spec.residency);
    if (spec.dataRegion !== "" && allowed(spec.dataRegion)) return spec.dataRegion;
    return [...this.regionSize.entries()]
      .filter(([r]) => allowed(r))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0];
  }

  /** The slot this policy takes among feasible ones. */
  private choose(slots: Slot[], spec: JobSpec): Slot | undefined {
    if (slots.length === 0) return undefined;
    if (this.name === "random") return slots[Math.floor(this.rng() * slots.length)];
    if (this.name === "cheapestSingleRegion") {
      const home = this.home(spec);
      const local = slots.filter((s) => s.agent.region === home);
      if (local.length === 0) this.fallbacks++;
      return (local.length > 0 ? local : slots).reduce((a, b) => (this.prefer(b, a, spec) ? b : a));
    }
    return slots.reduce((a, b) => (this.prefer(b, a, spec) ? b : a));
  }

  /** b preferred over a under this policy. */
  private prefer(b: Slot, a: Slot, spec: JobSpec): boolean {
    switch (this.name) {
      case "firstFit":
      case "random":
        return b.agent.id < a.agent.id;
      case "spread":
        return b.free > a.free || (b.free === a.free && b.agent.id < a.agent.id);
      case "cheapestSingleRegion": {
        const home = this.home(spec);
        const bh = b.agent.region === home;
        const ah = a.agent.region === home;
        if (bh !== ah) return bh;
        return b.price < a.price || (b.price === a.price && b.agent.id < a.agent.id);
      }
    }
  }
}
