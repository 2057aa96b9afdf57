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

/** An (agent, model) that passes a job's hard constraints other than capacity and freshness, at its price. */
interface StaticSlot {
  agent: AgentView;
  model: string;
  price: number;
  interruptible: boolean;
}

/** A static slot bound to one ClusterState's offer (its live free count). */
interface BoundSlot extends StaticSlot {
  offer: { free: number; agent: AgentView } | undefined;
}

/** The (agent, model) pairs a spec may ever use, in agent order: everything but capacity and freshness. */
function staticSlots(agents: Iterable<AgentView>, spec: JobSpec): StaticSlot[] {
  const out: StaticSlot[] = [];
  for (const agent of agents) {
    if (spec.regions.length > 0 && !spec.regions.includes(agent.region)) continue;
    if (spec.excludeRegions.includes(agent.region)) continue;
    if (spec.residency !== "" && agent.residency !== spec.residency) continue;
    for (const p of agent.prices) {
      if (spec.gpuModels.length > 0 && !spec.gpuModels.includes(p.gpuModel)) continue;
      const gpus = agent.gpus.filter((g) => g.model === p.gpuModel && g.healthy);
      if (gpus.length === 0 || gpus.some((g) => g.vramMib < spec.minVramMib)) continue;
      const spot = spec.interruptible && p.interruptiblePerHour > 0 && p.interruptiblePerHour < p.onDemandPerHour;
      const price = spot ? p.interruptiblePerHour : p.onDemandPerHour;
      if (spec.maxPricePerGpuHour > 0 && price > spec.maxPricePerGpuHour) continue;
      out.push({ agent, model: p.gpuModel, price, interruptible: spot });
    }
  }
  return out;
}

/** The static slots with room for one replica now (free GPUs of the model ≥ the replica's) on fresh agents. */
function withRoom(
  state: ClusterState,
  slots: readonly StaticSlot[],
  spec: JobSpec,
  nowMs: number,
  maxAdvertAgeMs: number,
): Slot[] {
  const out: Slot[] = [];
  for (const s of slots) {
    const agent = state.agent(s.agent.id);
    if (!agent || agent.draining || nowMs - agent.lastSeenMs > maxAdvertAgeMs) continue;
    const free = state.offerOf(agent.id, s.model)?.free ?? 0;
    if (free < spec.gpusPerReplica) continue;
    out.push({ ...s, agent, free });
  }
  return out;
}

/** Every (agent, model) that passes the job's hard constraints and has room for one replica now. */
export function feasibleSlots(
  state: ClusterState,
  spec: JobSpec,
  nowMs: number,
  maxAdvertAgeMs = MAX_ADVERT_AGE_MS,
): Slot[] {
  return withRoom(state, staticSlots(state.agents(), spec), spec, nowMs, maxAdvertAgeMs);
}

/** Everything in a spec that `staticSlots` looks at. */
function staticKey(spec: JobSpec): string {
  return [
    spec.regions.join("|"),
    spec.excludeRegions.join("|"),
    spec.residency,
    spec.gpuModels.join("|"),
    spec.minVramMib,
    spec.interruptible,
    spec.maxPricePerGpuHour,
  ].join(";");
}

export class BaselinePlacer {
  fallbacks = 0;
  private readonly regionSize = new Map<string, number>();
  /**
   * Static slots per constraint set, bound to a state's offers, over the constructor's agents: a placer's fleet
   * does not change (the bench and the replay never re-advertise), so only free counts are read per decision.
   */
  private readonly statics = new WeakMap<ClusterState, Map<string, BoundSlot[]>>();
  private readonly bySpec = new WeakMap<JobSpec, { state: ClusterState; bound: BoundSlot[] }>();

  constructor(
    readonly name: BaselineName,
    private readonly rng: () => number,
    agents: readonly AgentView[],
    /** Adverts older than this are skipped; a replay, whose agents never go quiet, passes Infinity. */
    private readonly maxAdvertAgeMs = MAX_ADVERT_AGE_MS,
  ) {
    for (const a of agents) this.regionSize.set(a.region, (this.regionSize.get(a.region) ?? 0) + a.gpus.length);
    this.agents = [...agents].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private readonly agents: readonly AgentView[];

  /** Feasible slots now, in agent-id order; `firstOnly` stops at the first (all first-fit needs outside gangs). */
  private slots(state: ClusterState, spec: JobSpec, nowMs: number, firstOnly = false): Slot[] {
    let bound = this.bySpec.get(spec)?.state === state ? this.bySpec.get(spec)!.bound : undefined;
    if (!bound) {
      let perState = this.statics.get(state);
      if (!perState) {
        perState = new Map();
        this.statics.set(state, perState);
      }
      const key = staticKey(spec);
      bound = perState.get(key);
      if (!bound) {
        bound = staticSlots(this.agents, spec).map((s) => ({ ...s, offer: state.offerOf(s.agent.id, s.model) }));
        perState.set(key, bound);
      }
      this.bySpec.set(spec, { state, bound });
    }
    const out: Slot[] = [];
    const need = spec.gpusPerReplica;
    for (const s of bound) {
      const offer = s.offer;
      if (!offer || offer.free < need) continue;
      const agent = offer.agent;
      if (agent.draining || nowMs - agent.lastSeenMs > this.maxAdvertAgeMs) continue;
      out.push({ agent, model: s.model, price: s.price, interruptible: s.interruptible, free: offer.free });
      if (firstOnly) break;
    }
    return out;
  }

  /** Places every replica (all or nothing) and commits the allocations to `state`; undefined if it cannot. */
  place(state: ClusterState, req: PlacementRequest, nowMs: number): BaselinePlacement[] | undefined {
    const spec = req.spec;
    const placed: BaselinePlacement[] = [];
    const gang = spec.kind === "training" && req.replicas.length > 1;
    const gangKey = (s: Slot) => `${s.agent.region}|${s.model}|${spec.allowFabricSpanning ? "" : fabricKeyOf(s.agent)}`;
    let groupKey: string | undefined;
    if (gang) {
      const slots = this.slots(state, spec, nowMs);
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
      let slots = this.slots(state, spec, nowMs, this.name === "firstFit" && groupKey === undefined);
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
