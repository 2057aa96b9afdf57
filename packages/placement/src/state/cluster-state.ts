/**
 * ClusterState: the scheduler's incrementally maintained view of agents and allocations, with the offer index
 * kept in step. The scheduler owns it and applies each committed plan to it (addAllocation / removeAllocation)
 * instead of rebuilding a snapshot per decision; the engine only reads it.
 */
import { priceFor } from "@capa/domain";
import { OverCommitError } from "../errors.js";
import type { AgentView, AllocationView } from "../model.js";
import { Offer, OfferIndex, PRICE_MODES, type PriceMode } from "./offer-index.js";

interface AgentRecord {
  view: AgentView;
  /** One offer per priced GPU model with at least one healthy GPU. */
  offers: Map<string, Offer>;
  /** GPU index → task id holding it. */
  taken: Map<number, string>;
  /** Set from `versionClock` on every change of the view or of which GPUs are taken (see `agentVersion`). */
  version: number;
}

/**
 * The fabric domain a gang can span within. An agent without an NVLink/fabric domain is grouped by zone: absent
 * a fast interconnect, a zone's network is the best locality capa knows about; without a zone it stands alone.
 */
export function fabricKeyOf(agent: AgentView): string {
  if (agent.fabricDomain !== "") return `fabric:${agent.fabricDomain}`;
  if (agent.zone !== "") return `zone:${agent.zone}`;
  return `agent:${agent.id}`;
}

export class ClusterState {
  private readonly records = new Map<string, AgentRecord>();
  private readonly allocs = new Map<string, AllocationView>();
  private readonly allocsByAgent = new Map<string, Set<string>>();
  private readonly allocsByJob = new Map<string, Set<string>>();
  /** @internal The offer indexes, one per price mode; read by the engine's search. */
  readonly indexes: Record<PriceMode, OfferIndex> = {
    "on-demand": new OfferIndex("on-demand"),
    interruptible: new OfferIndex("interruptible"),
  };
  private sortedAgents: AgentView[] | undefined;
  /**
   * Allocations by priority (all, interruptible), stopping ones excluded: lets the engine skip a preemption
   * search that cannot succeed.
   */
  private readonly byPriority = new Map<number, { all: number; interruptible: number }>();
  /** Task ids of allocations marked `stopping`. */
  private readonly stoppingIds = new Set<string>();
  /** One counter for every agent's version, so a removed and re-added agent never repeats an old one. */
  private versionClock = 0;

  /** Adds an agent or replaces it (GPU set, prices, draining, lastSeen may all change). Keeps its allocations. */
  upsertAgent(agent: AgentView): void {
    const previous = this.records.get(agent.id);
    if (previous) this.unindex(previous);
    const record: AgentRecord = {
      view: agent,
      offers: new Map(),
      taken: previous?.taken ?? new Map(),
      version: ++this.versionClock,
    };
    const healthyByModel = new Map<string, { indices: number[]; minVram: number }>();
    for (const gpu of agent.gpus) {
      if (!gpu.healthy) continue;
      const group = healthyByModel.get(gpu.model) ?? { indices: [], minVram: Number.POSITIVE_INFINITY };
      group.indices.push(gpu.index);
      group.minVram = Math.min(group.minVram, gpu.vramMib);
      healthyByModel.set(gpu.model, group);
    }
    const domainKey = fabricKeyOf(agent);
    for (const [model, group] of healthyByModel) {
      // A model is offered only if the agent prices it (domain's priceFor: on-demand entry, interruptible > 0).
      const onDemand = priceFor(agent.prices, model, false);
      const interruptible = priceFor(agent.prices, model, true);
      if (onDemand === undefined && interruptible === undefined) continue;
      const indices = group.indices.sort((a, b) => a - b);
      const offer = new Offer(agent, model, indices, group.minVram, onDemand, interruptible, domainKey);
      offer.free = indices.filter((i) => !record.taken.has(i)).length;
      record.offers.set(model, offer);
    }
    this.records.set(agent.id, record);
    if (previous) this.replaceSorted(agent);
    else this.sortedAgents = undefined;
    // Draining agents stay indexed so that explanations can count them ("agent-draining"); a filter rejects them.
    for (const offer of record.offers.values()) this.index(offer);
  }

  /**
   * A new sighting of a known agent whose view is otherwise unchanged (a heartbeat, an advert with nothing new):
   * only `lastSeenMs` moves, so its offers keep their places in the index. Re-indexing every agent on each
   * sighting (thousands a second at 10,000 agents) cost the scheduler a large share of a core. The version still
   * changes: readers of the view (the market's offer sources) see the new lastSeenMs. False for an unknown agent.
   */
  touchAgent(agentId: string, lastSeenMs: number): boolean {
    const record = this.records.get(agentId);
    if (!record) return false;
    const view: AgentView = { ...record.view, lastSeenMs };
    record.view = view;
    for (const offer of record.offers.values()) offer.agent = view;
    record.version = ++this.versionClock;
    this.replaceSorted(view);
    return true;
  }

  /** Puts a known agent's new view in the sorted list in place (same id, so same position) instead of re-sorting. */
  private replaceSorted(view: AgentView): void {
    const sorted = this.sortedAgents;
    if (!sorted) return;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]!.id < view.id) lo = mid + 1;
      else hi = mid;
    }
    if (sorted[lo]?.id === view.id) sorted[lo] = view;
    else this.sortedAgents = undefined;
  }

  /** Removes the agent and every allocation on it (its tasks are lost; the scheduler re-places them). */
  removeAgent(agentId: string): void {
    const record = this.records.get(agentId);
    if (!record) return;
    this.unindex(record);
    for (const taskId of [...(this.allocsByAgent.get(agentId) ?? [])]) this.forgetAllocation(taskId);
    this.allocsByAgent.delete(agentId);
    this.records.delete(agentId);
    this.sortedAgents = undefined;
  }

  /**
   * Records an allocation. Throws OverCommitError, changing nothing, if the agent is unknown or any GPU is
   * unknown or held by another task. Re-adding a task id replaces its previous allocation.
   */
  addAllocation(a: AllocationView): void {
    const record = this.records.get(a.agentId);
    if (!record) throw new OverCommitError(`task ${a.taskId}: unknown agent ${a.agentId}`, a.agentId, -1);
    const known = new Set(record.view.gpus.map((g) => g.index));
    const seen = new Set<number>();
    for (const index of a.gpuIndices) {
      if (!known.has(index)) {
        throw new OverCommitError(`task ${a.taskId}: agent ${a.agentId} has no GPU ${index}`, a.agentId, index);
      }
      const holder = record.taken.get(index);
      if ((holder !== undefined && holder !== a.taskId) || seen.has(index)) {
        throw new OverCommitError(
          `task ${a.taskId}: GPU ${index} on agent ${a.agentId} is already held by ${holder ?? a.taskId}`,
          a.agentId,
          index,
        );
      }
      seen.add(index);
    }
    if (this.allocs.has(a.taskId)) this.removeAllocation(a.taskId);
    for (const index of a.gpuIndices) record.taken.set(index, a.taskId);
    this.allocs.set(a.taskId, a);
    if (a.stopping) this.stoppingIds.add(a.taskId);
    addTo(this.allocsByAgent, a.agentId, a.taskId);
    addTo(this.allocsByJob, a.jobId, a.taskId);
    this.countPriority(a, 1);
    this.refreshFree(record, a.gpuIndices);
  }

  /** Releases a task's GPUs; unknown task ids are ignored (release is idempotent). */
  removeAllocation(taskId: string): void {
    const a = this.allocs.get(taskId);
    if (!a) return;
    this.forgetAllocation(taskId);
    const record = this.records.get(a.agentId);
    if (!record) return;
    for (const index of a.gpuIndices) if (record.taken.get(index) === taskId) record.taken.delete(index);
    this.refreshFree(record, a.gpuIndices);
  }

  agent(agentId: string): AgentView | undefined {
    return this.records.get(agentId)?.view;
  }

  /** Agents sorted by id. */
  agents(): Iterable<AgentView> {
    if (!this.sortedAgents) {
      this.sortedAgents = [...this.records.values()].map((r) => r.view).sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    return this.sortedAgents;
  }

  allocations(): Iterable<AllocationView> {
    return this.allocs.values();
  }

  allocation(taskId: string): AllocationView | undefined {
    return this.allocs.get(taskId);
  }

  /** Allocations marked `stopping` (they hold their GPUs until removed), by task id. */
  stoppingAllocations(): AllocationView[] {
    return [...this.stoppingIds].sort().map((id) => this.allocs.get(id)!);
  }

  /** Allocations on one agent. */
  allocationsOn(agentId: string): AllocationView[] {
    return [...(this.allocsByAgent.get(agentId) ?? [])].map((id) => this.allocs.get(id)!);
  }

  /** Allocations of one job. */
  allocationsOf(jobId: string): AllocationView[] {
    return [...(this.allocsByJob.get(jobId) ?? [])].map((id) => this.allocs.get(id)!);
  }

  /**
   * A number that changes whenever the agent's view (`upsertAgent`) or the set of its GPUs held by allocations
   * changes, so a reader can keep something derived from one agent (the market's offer source) until it does;
   * undefined for an unknown agent. Only equality is meaningful.
   */
  agentVersion(agentId: string): number | undefined {
    return this.records.get(agentId)?.version;
  }

  /** Healthy, unallocated GPU indices of the agent, ascending. */
  freeGpuIndices(agentId: string): number[] {
    const record = this.records.get(agentId);
    if (!record) return [];
    return record.view.gpus
      .filter((g) => g.healthy && !record.taken.has(g.index))
      .map((g) => g.index)
      .sort((a, b) => a - b);
  }

  /** @internal The agent's offer of a model. */
  offerOf(agentId: string, model: string): Offer | undefined {
    return this.records.get(agentId)?.offers.get(model);
  }

  /** @internal All offers of an agent. */
  offersOf(agentId: string): Iterable<Offer> {
    return this.records.get(agentId)?.offers.values() ?? [];
  }

  /** @internal Which task holds a GPU, if any. */
  holderOf(agentId: string, gpuIndex: number): string | undefined {
    return this.records.get(agentId)?.taken.get(gpuIndex);
  }

  /**
   * @internal Whether any allocation (stopping ones aside) could yield to a job of this priority: a lower
   * priority, or interruptible at the same or lower priority when the job is not interruptible.
   */
  hasAllocationsYieldingTo(priority: number, interruptible: boolean): boolean {
    for (const [p, n] of this.byPriority) {
      if (p < priority && n.all > 0) return true;
      if (!interruptible && p <= priority && n.interruptible > 0) return true;
    }
    return false;
  }

  private countPriority(a: AllocationView, delta: number): void {
    if (a.stopping) return;
    const n = this.byPriority.get(a.priority) ?? { all: 0, interruptible: 0 };
    n.all += delta;
    if (a.interruptible) n.interruptible += delta;
    if (n.all === 0) this.byPriority.delete(a.priority);
    else this.byPriority.set(a.priority, n);
  }

  get agentCount(): number {
    return this.records.size;
  }

  private index(offer: Offer): void {
    for (const mode of PRICE_MODES) this.indexes[mode].add(offer);
  }

  private unindex(record: AgentRecord): void {
    for (const offer of record.offers.values()) for (const mode of PRICE_MODES) this.indexes[mode].remove(offer);
  }

  private refreshFree(record: AgentRecord, touched: readonly number[]): void {
    record.version = ++this.versionClock;
    const models = new Set<string>();
    for (const gpu of record.view.gpus) if (touched.includes(gpu.index)) models.add(gpu.model);
    for (const model of models) {
      const offer = record.offers.get(model);
      if (!offer) continue;
      const oldFree = offer.free;
      offer.free = offer.healthyIndices.filter((i) => !record.taken.has(i)).length;
      if (offer.free === oldFree) continue;
      for (const mode of PRICE_MODES) offer.slots[mode]?.bucket.moveFree(offer, oldFree);
    }
  }

  private forgetAllocation(taskId: string): void {
    const a = this.allocs.get(taskId);
    if (!a) return;
    this.allocs.delete(taskId);
    this.stoppingIds.delete(taskId);
    this.countPriority(a, -1);
    removeFrom(this.allocsByAgent, a.agentId, taskId);
    removeFrom(this.allocsByJob, a.jobId, taskId);
  }
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
