/**
 * Quotes (`JobService.Quote`, `capa quote`): what a spec would cost and when it could start, without
 * submitting it. The estimate, written down:
 *
 * - Feasible offers: (agent, GPU model) pairs that pass the spec's constraints (model, VRAM, regions,
 *   exclusions, residency, node selector, freshness), are priced at or below `maxPricePerGpuHour`, and hold at
 *   least one replica (`gpusPerReplica` healthy GPUs of that model on that agent).
 * - Price: the replicas the start simulation (below) places the job on at its start, cheapest feasible offers
 *   first; without a start, the cheapest total capacity (optimistic). Interruptible jobs pay the cheaper of
 *   interruptible and on-demand, as placement does.
 * - Hourly = Σ price × gpusPerReplica over the chosen replicas (exact integers). Total = Σ per replica
 *   `costForGpuMillis(price, gpusPerReplica × expectedDuration)`: rounded half-up per replica, exactly as the
 *   ledger will charge each task if it runs for the expected duration. No expected duration → total 0.
 * - Start: simulated, greedily and in time order, from now. The state: the free GPUs of every agent; release
 *   events at running allocations' expected ends (one past its expected end releases now; one without an
 *   expected end never does); the queue: pending jobs ahead of the quoted one (priority at least its own, since
 *   it would be submitted now, so every equal-priority job was submitted earlier), highest priority first, then
 *   oldest, then by id, then the quoted job last. At each event time the releases due are applied, then every
 *   waiting job whose agents gained GPUs is tried in queue order (greedy: one that does not fit does not block
 *   those behind it); a placed job ahead releases its GPUs after its expected duration (never, without one).
 *   A job is placed all or nothing, cheapest feasible offers first, feasible meaning the same constraint and
 *   price check the quote applies to its own spec; a gang (training, more than one replica) needs one
 *   (region, GPU model) that holds every replica, and takes the cheapest such. The start is the first time the
 *   quoted job's whole demand fits; basis "free-now" (now), "expected-ends" (later, no job ahead took GPUs it
 *   could use) or "queue" (later, jobs ahead did). No fit once every expected release is spent → "unknown"
 *   (GPUs it needs are held without an expected end); more than `maxStartEvents` simulated events (releases
 *   on agents a simulated job could use, placements and placement attempts; default 10 000) → "event-cap".
 *   Both leave the start undefined and say why in `startDetail`. Not modelled: preemption, fabric domains,
 *   spreading, data locality.
 */
import { costForGpuMillis, formatUsd, type JobSpec, type Micros, residencyOfRegion } from "@capa/domain";
import { type AgentOffer, agentOffers, aggregateOffers, jobPricing, type OfferSource } from "./offers.js";

export interface RunningAllocation {
  agentId: string;
  gpuIndices: number[];
  /** When the allocation is expected to end (start + the job's expected duration); 0 = unknown. */
  expectedEndMs: number;
}

/** A job waiting for GPUs (pending or rescheduling), as the start simulation sees it. */
export interface PendingJob {
  jobId: string;
  spec: JobSpec;
  /** Replicas still waiting for a placement (a gang re-places all of them). */
  replicas: number;
  createdAtMs: number;
}

export interface QuoteQueue {
  running: readonly RunningAllocation[];
  /** Jobs waiting for GPUs; those ahead of the quoted job are simulated (see the header). Omitted = none. */
  pending?: readonly PendingJob[];
}

/** Default cap on the start simulation's events (releases, placements and placement attempts). */
export const DEFAULT_MAX_START_EVENTS = 10_000;

export interface QuoteOptions {
  /** Agents not heard from for longer are left out; 0 = keep all. */
  maxAdvertAgeMs?: number;
  /** Cap on the start simulation's events; default `DEFAULT_MAX_START_EVENTS`. */
  maxStartEvents?: number;
}

export interface RegionQuote {
  region: string;
  gpuModel: string;
  offers: number;
  freeGpus: number;
  cheapestPricePerGpuHour: Micros;
  medianPricePerGpuHour: Micros;
}

export interface PricedOffer {
  agentId: string;
  region: string;
  gpuModel: string;
  pricePerGpuHour: Micros;
  interruptible: boolean;
}

export interface ChosenReplicas extends PricedOffer {
  replicas: number;
}

/**
 * How the start was estimated: "free-now" (fits now); "expected-ends" (later, once running allocations end;
 * no job queued ahead took GPUs it could use); "queue" (later, and jobs queued ahead took GPUs it could use);
 * "unknown" (GPUs it needs are held without an expected end); "event-cap" (the simulation hit its event cap);
 * "infeasible" (nothing fits, see `reason`).
 */
export type StartBasis = "free-now" | "expected-ends" | "queue" | "unknown" | "event-cap" | "infeasible";
export type QuoteReasonCode = "none" | "no-matching-offer" | "over-max-price" | "insufficient-capacity";

export interface QuoteResult {
  feasibleOffers: number;
  regions: RegionQuote[];
  estimatedHourly: Micros;
  estimatedTotal: Micros;
  /** Undefined when no start can be estimated (see `startBasis`). */
  estimatedStartMs: number | undefined;
  startBasis: StartBasis;
  /** The start estimate in words: what it waits for, or why there is none. */
  startDetail: string;
  /** Jobs queued ahead of this one that the start simulation placed or tried (those that can ever fit). */
  queuedAhead: number;
  reasonCode: QuoteReasonCode;
  /** Why nothing fits, in words; "" when the job fits. */
  reason: string;
  /** The cheapest offer that fits the spec except for its price cap; undefined when none does. */
  cheapest: PricedOffer | undefined;
  /** The replicas the price estimate is based on. */
  chosen: ChosenReplicas[];
}

/** The expected cost admission reserves (see `admissionReservation` in budget.ts). */
export interface ExpectedCost {
  total: Micros;
  hourly: Micros;
}

export function expectedCostOf(result: Pick<QuoteResult, "estimatedTotal" | "estimatedHourly">): ExpectedCost {
  return { total: result.estimatedTotal, hourly: result.estimatedHourly };
}

/** True when the source passes the spec's agent-level constraints (everything but GPUs and price). */
export function agentMatchesSpec(source: OfferSource, spec: JobSpec, nowMs: number, maxAdvertAgeMs = 0): boolean {
  if (source.draining) return false;
  if (maxAdvertAgeMs > 0 && nowMs - source.lastSeenMs > maxAdvertAgeMs) return false;
  if (spec.regions.length > 0 && !spec.regions.includes(source.region)) return false;
  if (spec.excludeRegions.includes(source.region)) return false;
  if (spec.residency && residencyOfRegion(source.region) !== spec.residency) return false;
  for (const [key, value] of Object.entries(spec.nodeSelector)) {
    if (source.labels?.[key] !== value) return false;
  }
  return true;
}

/**
 * A source's offers per GPU shape (models, minimum VRAM, pricing mode), kept with the source. Sources are
 * immutable and the scheduler keeps each one until its agent changes (`offerSources`), so a quote on every
 * submit expands only the agents that changed since the last one instead of all of them (at 10,000 agents
 * the expansion was three quarters of a quote).
 */
const expanded = new WeakMap<OfferSource, Map<string, AgentOffer[]>>();

function offersOfShape(source: OfferSource, spec: JobSpec, models: ReadonlySet<string>, shape: string): AgentOffer[] {
  let byShape = expanded.get(source);
  if (!byShape) {
    byShape = new Map();
    expanded.set(source, byShape);
  }
  let offers = byShape.get(shape);
  if (!offers) {
    const gpuOk = (g: { model: string; vramMib: number }) =>
      (models.size === 0 || models.has(g.model.toUpperCase())) && g.vramMib >= spec.minVramMib;
    offers = agentOffers(source, jobPricing(spec.interruptible), gpuOk);
    byShape.set(shape, offers);
  }
  return offers;
}

function specOffers(sources: readonly OfferSource[], spec: JobSpec, nowMs: number, options: QuoteOptions) {
  const models = new Set(spec.gpuModels.map((m) => m.toUpperCase()));
  const shape = `${spec.interruptible ? "i" : "o"}|${spec.minVramMib}|${[...models].sort().join(",")}`;
  const out: AgentOffer[] = [];
  for (const source of sources) {
    if (!agentMatchesSpec(source, spec, nowMs, options.maxAdvertAgeMs)) continue;
    for (const offer of offersOfShape(source, spec, models, shape)) {
      if (offer.gpuIndices.length >= spec.gpusPerReplica) out.push(offer);
    }
  }
  return out.sort(byPriceThenId);
}

function byPriceThenId(a: AgentOffer, b: AgentOffer): number {
  return (
    a.price - b.price || (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0) || (a.model < b.model ? -1 : 1)
  );
}

function priced(offer: AgentOffer): PricedOffer {
  return {
    agentId: offer.agentId,
    region: offer.region,
    gpuModel: offer.model,
    pricePerGpuHour: offer.price,
    interruptible: offer.interruptible,
  };
}

/** Feasible offers of a spec: matching candidates, and those within its price cap (both cheapest first). */
function feasibleOffers(sources: readonly OfferSource[], spec: JobSpec, nowMs: number, options: QuoteOptions) {
  const candidates = specOffers(sources, spec, nowMs, options);
  const maxPrice = spec.maxPricePerGpuHour;
  const feasible = maxPrice > 0 ? candidates.filter((o) => o.price <= maxPrice) : candidates;
  return { candidates, feasible };
}

/** A job's GPU demand as the start simulation places it. */
interface Demand {
  /** Feasible offers, cheapest first. */
  offers: readonly AgentOffer[];
  replicas: number;
  gpusPerReplica: number;
  /** All replicas in one (region, GPU model), as the placement engine places a training gang. */
  gang: boolean;
  /** Expected duration; 0 = unknown (a placed job never releases its GPUs). */
  durationMs: number;
}

function demandOf(spec: JobSpec, replicas: number, offers: readonly AgentOffer[]): Demand {
  return {
    offers,
    replicas,
    gpusPerReplica: spec.gpusPerReplica,
    gang: spec.kind === "training" && replicas > 1,
    durationMs: Math.max(0, spec.expectedDurationSeconds) * 1000,
  };
}

/** Free GPU indices per agent. */
type FreeGpus = Map<string, Set<number>>;
/** What a fill reads: an agent's free GPUs. */
type FreeLookup = Pick<FreeGpus, "get">;

/**
 * The free GPUs at `now` (healthy, unallocated, plus those of running allocations already past their expected
 * end, which the simulation releases first), built per agent only when a fill asks: a job that fits now on its
 * cheapest offers reads a few agents, not the 10,000 a full free map would build on every quote.
 */
class FreeNow implements FreeLookup {
  private readonly sets = new Map<string, Set<number>>();
  private readonly byId = new Map<string, OfferSource>();
  private readonly overdue = new Map<string, number[]>();
  constructor(sources: readonly OfferSource[], running: readonly RunningAllocation[], nowMs: number) {
    for (const s of sources) this.byId.set(s.agentId, s);
    for (const a of running)
      if (a.expectedEndMs > 0 && a.expectedEndMs <= nowMs) {
        const list = this.overdue.get(a.agentId);
        if (list) list.push(...a.gpuIndices);
        else this.overdue.set(a.agentId, [...a.gpuIndices]);
      }
  }

  get(agentId: string): Set<number> | undefined {
    let set = this.sets.get(agentId);
    if (set) return set;
    const source = this.byId.get(agentId);
    if (!source) return undefined;
    set = new Set<number>();
    for (const g of source.gpus) if (g.healthy && g.free) set.add(g.index);
    for (const g of this.overdue.get(agentId) ?? []) set.add(g);
    this.sets.set(agentId, set);
    return set;
  }
}

/** Replicas taken on one offer, and the GPUs they use. */
interface Take {
  offer: AgentOffer;
  replicas: number;
  gpus: number[];
}

/** Cheapest-first fill of `replicas` on `offers` from `free`; undefined unless every replica fits. */
function fill(offers: readonly AgentOffer[], free: FreeLookup, replicas: number, gpr: number): Take[] | undefined {
  const takes: Take[] = [];
  let left = replicas;
  for (const offer of offers) {
    if (left === 0) break;
    const set = free.get(offer.agentId);
    if (!set) continue;
    const available = offer.gpuIndices.filter((g) => set.has(g));
    const n = Math.min(left, Math.floor(available.length / gpr));
    if (n > 0) {
      takes.push({ offer, replicas: n, gpus: available.slice(0, n * gpr) });
      left -= n;
    }
  }
  return left === 0 ? takes : undefined;
}

/** Offers grouped by (region, GPU model), in order of their cheapest offer. */
function buckets(offers: readonly AgentOffer[]): AgentOffer[][] {
  const byKey = new Map<string, AgentOffer[]>();
  for (const offer of offers) {
    const key = `${offer.region}\u0000${offer.model}`;
    const list = byKey.get(key);
    if (list) list.push(offer);
    else byKey.set(key, [offer]);
  }
  return [...byKey.values()];
}

function costOf(takes: readonly Take[]): number {
  return takes.reduce((sum, t) => sum + t.offer.price * t.replicas, 0);
}

/** Where the demand fits on `free` now (a gang: the cheapest (region, model) that holds it); undefined if not. */
function fit(demand: Demand, free: FreeLookup): Take[] | undefined {
  if (!demand.gang) return fill(demand.offers, free, demand.replicas, demand.gpusPerReplica);
  let best: Take[] | undefined;
  for (const bucket of buckets(demand.offers)) {
    const takes = fill(bucket, free, demand.replicas, demand.gpusPerReplica);
    if (takes && (!best || costOf(takes) < costOf(best))) best = takes;
  }
  return best;
}

/** Every GPU of the offers counted free: the "total capacity" view. */
function allGpus(offers: readonly AgentOffer[]): FreeGpus {
  const free: FreeGpus = new Map();
  for (const o of offers) {
    const set = free.get(o.agentId) ?? new Set<number>();
    for (const g of o.gpuIndices) set.add(g);
    free.set(o.agentId, set);
  }
  return free;
}

/** Most replicas the offers could hold if nothing else ran (a gang: in its largest (region, model)). */
function totalCapacity(demand: Demand): number {
  const replicasOf = (offers: readonly AgentOffer[]) =>
    offers.reduce((n, o) => n + Math.floor(o.gpuIndices.length / demand.gpusPerReplica), 0);
  if (!demand.gang) return replicasOf(demand.offers);
  return Math.max(0, ...buckets(demand.offers).map(replicasOf));
}

interface Release {
  at: number;
  seq: number;
  gpus: { agentId: string; gpus: number[] }[];
}

/** Binary min-heap of releases by time, then insertion order (deterministic). */
class ReleaseHeap {
  private readonly items: Release[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): Release | undefined {
    return this.items[0];
  }

  push(at: number, gpus: Release["gpus"]): void {
    const items = this.items;
    items.push({ at, seq: this.seq++, gpus });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Release | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && before(items[l]!, items[m]!)) m = l;
        if (r < items.length && before(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Release, b: Release): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

const FREE_NOW_DETAIL = "free GPUs hold the whole job now";

interface StartEstimate {
  startMs: number | undefined;
  basis: "free-now" | "expected-ends" | "queue" | "unknown" | "event-cap";
  detail: string;
  /** Where the quoted job goes at its start; undefined without a start. */
  takes: Take[] | undefined;
}

/** Pending jobs ahead of a job submitted now with `priority`, in queue order: priority, age, id. */
function jobsAhead(pending: readonly PendingJob[], priority: number, nowMs: number): PendingJob[] {
  return pending
    .filter(
      (p) =>
        p.replicas > 0 &&
        p.spec.gpusPerReplica > 0 &&
        (p.spec.priority > priority || (p.spec.priority === priority && p.createdAtMs <= nowMs)),
    )
    .sort(
      (a, b) =>
        b.spec.priority - a.spec.priority ||
        a.createdAtMs - b.createdAtMs ||
        (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0),
    );
}

/**
 * The start simulation (see the header): releases and greedy placements in time order until `target`, last in
 * the queue after `ahead`, fits.
 */
function simulateStart(
  target: Demand,
  ahead: readonly Demand[],
  sources: readonly OfferSource[],
  running: readonly RunningAllocation[],
  nowMs: number,
  maxEvents: number,
): StartEstimate {
  // Nothing queued ahead: the simulation's first step (overdue releases, then the job) decides a start now.
  // Tried on lazily built free sets first; only a job that must wait pays for the whole simulation.
  if (ahead.length === 0) {
    const takes = fit(target, new FreeNow(sources, running, nowMs));
    if (takes) return { startMs: nowMs, basis: "free-now", detail: FREE_NOW_DETAIL, takes };
  }
  // Only agents some simulated job could use are tracked: the others' GPUs and releases change no fit. Building
  // every agent's free set on each quote was most of admission's cost at 10,000 agents.
  const usable = new Set<string>();
  for (const demand of [...ahead, target]) for (const o of demand.offers) usable.add(o.agentId);
  const free: FreeGpus = new Map();
  for (const s of sources) {
    if (!usable.has(s.agentId)) continue;
    const set = new Set<number>();
    for (const g of s.gpus) if (g.healthy && g.free) set.add(g.index);
    free.set(s.agentId, set);
  }
  const targetAgents = new Set(target.offers.map((o) => o.agentId));
  const heap = new ReleaseHeap();
  let unknownRunning = 0;
  for (const a of running) {
    if (!free.has(a.agentId)) continue;
    if (a.expectedEndMs > 0) heap.push(Math.max(a.expectedEndMs, nowMs), [{ agentId: a.agentId, gpus: a.gpuIndices }]);
    else if (targetAgents.has(a.agentId)) unknownRunning++;
  }

  const queue = [...ahead, target];
  const last = queue.length - 1;
  // Waiting jobs per agent they could use, so a release retries only the jobs it might let in.
  const byAgent = new Map<string, number[]>();
  queue.forEach((demand, index) => {
    for (const agentId of new Set(demand.offers.map((o) => o.agentId))) {
      const list = byAgent.get(agentId);
      if (list) list.push(index);
      else byAgent.set(agentId, [index]);
    }
  });
  const waiting = queue.map(() => true);
  let dirty = new Set(queue.keys());
  let events = 0;
  let tookAhead = 0;
  let unknownAhead = 0;
  const capped = (at: number): StartEstimate => ({
    startMs: undefined,
    basis: "event-cap",
    detail:
      `the start simulation stopped after ${maxEvents} events at ${new Date(at).toISOString()}; ` +
      "the job starts no earlier",
    takes: undefined,
  });

  for (let t = nowMs; ; ) {
    while ((heap.peek()?.at ?? Number.POSITIVE_INFINITY) <= t) {
      if (++events > maxEvents) return capped(t);
      for (const { agentId, gpus } of heap.pop()!.gpus) {
        const set = free.get(agentId);
        if (!set) continue;
        for (const g of gpus) set.add(g);
        for (const index of byAgent.get(agentId) ?? []) if (waiting[index]) dirty.add(index);
      }
    }
    for (const index of [...dirty].sort((a, b) => a - b)) {
      if (++events > maxEvents) return capped(t);
      const demand = queue[index]!;
      const takes = fit(demand, free);
      if (!takes) continue;
      if (index === last) {
        const basis = t === nowMs ? "free-now" : tookAhead > 0 ? "queue" : "expected-ends";
        const detail =
          basis === "free-now"
            ? FREE_NOW_DETAIL
            : basis === "queue"
              ? `after ${tookAhead} job(s) queued ahead take GPUs it could use and running work ends as expected`
              : "once running allocations end at their expected times";
        return { startMs: t, basis, detail, takes };
      }
      waiting[index] = false;
      const held = takes.map((tk) => ({ agentId: tk.offer.agentId, gpus: tk.gpus }));
      for (const { agentId, gpus } of held) for (const g of gpus) free.get(agentId)?.delete(g);
      const onTarget = held.some((h) => targetAgents.has(h.agentId));
      if (onTarget) tookAhead++;
      if (demand.durationMs > 0) heap.push(t + demand.durationMs, held);
      else if (onTarget) unknownAhead++;
    }
    dirty = new Set();
    const next = heap.peek();
    if (!next) {
      const holders = [
        ...(unknownRunning > 0 ? [`${unknownRunning} running allocation(s) without an expected end`] : []),
        ...(unknownAhead > 0 ? [`${unknownAhead} job(s) queued ahead without an expected duration`] : []),
      ];
      const by = holders.length > 0 ? ` by ${holders.join(" and ")}` : " with no expected end";
      return { startMs: undefined, basis: "unknown", detail: `GPUs this job needs stay held${by}`, takes: undefined };
    }
    t = next.at;
  }
}

function chosenOf(takes: readonly Take[]): ChosenReplicas[] {
  return takes.map((t) => ({ ...priced(t.offer), replicas: t.replicas }));
}

function cpuOnlyQuote(sources: readonly OfferSource[], spec: JobSpec, nowMs: number, options: QuoteOptions) {
  const agents = sources.filter((s) => agentMatchesSpec(s, spec, nowMs, options.maxAdvertAgeMs)).length;
  const result: QuoteResult = {
    feasibleOffers: agents,
    regions: [],
    estimatedHourly: 0,
    estimatedTotal: 0,
    estimatedStartMs: agents > 0 ? nowMs : undefined,
    startBasis: agents > 0 ? "free-now" : "infeasible",
    startDetail: agents > 0 ? "a CPU-only job needs no GPUs" : "",
    queuedAhead: 0,
    reasonCode: agents > 0 ? "none" : "no-matching-offer",
    reason: agents > 0 ? "" : "no agent matches the job's region and label constraints",
    cheapest: undefined,
    chosen: [],
  };
  return result;
}

export function quote(
  spec: JobSpec,
  sources: readonly OfferSource[],
  queue: QuoteQueue,
  nowMs: number,
  options: QuoteOptions = {},
): QuoteResult {
  const gpr = spec.gpusPerReplica;
  if (gpr <= 0) return cpuOnlyQuote(sources, spec, nowMs, options);
  const replicas = Math.max(1, spec.replicas);
  const { candidates, feasible } = feasibleOffers(sources, spec, nowMs, options);
  const maxPrice = spec.maxPricePerGpuHour;
  const cheapest = candidates[0] ? priced(candidates[0]) : undefined;
  const regions: RegionQuote[] = aggregateOffers(feasible, nowMs)
    .map((g) => ({
      region: g.region,
      gpuModel: g.gpuModel,
      offers: g.agents,
      freeGpus: g.freeGpus,
      cheapestPricePerGpuHour: g.minPricePerGpuHour,
      medianPricePerGpuHour: g.medianPricePerGpuHour,
    }))
    .sort(
      (a, b) =>
        a.cheapestPricePerGpuHour - b.cheapestPricePerGpuHour ||
        (a.region < b.region ? -1 : a.region > b.region ? 1 : a.gpuModel < b.gpuModel ? -1 : 1),
    );
  const base = { feasibleOffers: feasible.length, regions, cheapest };
  const infeasible = (reasonCode: QuoteReasonCode, reason: string): QuoteResult => ({
    ...base,
    estimatedHourly: 0,
    estimatedTotal: 0,
    estimatedStartMs: undefined,
    startBasis: "infeasible",
    startDetail: "",
    queuedAhead: 0,
    reasonCode,
    reason,
    chosen: [],
  });

  if (candidates.length === 0) {
    return infeasible(
      "no-matching-offer",
      `no offer matches the job's constraints (GPU model, VRAM, region, labels) with ${gpr} GPU(s) per replica`,
    );
  }
  if (feasible.length === 0 && cheapest) {
    return infeasible(
      "over-max-price",
      `no offer at or below ${formatUsd(maxPrice)}/GPU-h; cheapest is ${cheapest.gpuModel} at ` +
        `${formatUsd(cheapest.pricePerGpuHour)}/GPU-h in ${cheapest.region}`,
    );
  }
  const demand = demandOf(spec, replicas, feasible);
  const capacity = totalCapacity(demand);
  if (capacity < replicas) {
    return infeasible(
      "insufficient-capacity",
      `feasible offers hold at most ${capacity} of ${replicas} replica(s) of ${gpr} GPU(s)` +
        (demand.gang ? " in one region and GPU model (a gang does not span them)" : ""),
    );
  }

  // Jobs ahead that can never be placed stay pending forever and take nothing: left out.
  const ahead = jobsAhead(queue.pending ?? [], spec.priority, nowMs)
    .map((p) => demandOf(p.spec, p.replicas, feasibleOffers(sources, p.spec, nowMs, options).feasible))
    .filter((d) => totalCapacity(d) >= d.replicas);
  const maxEvents = options.maxStartEvents ?? DEFAULT_MAX_START_EVENTS;
  const start = simulateStart(demand, ahead, sources, queue.running, nowMs, maxEvents);
  const chosen = chosenOf(start.takes ?? fit(demand, allGpus(feasible)) ?? []);
  const durationMs = demand.durationMs;
  let hourly = 0;
  let total = 0;
  for (const c of chosen) {
    hourly += c.pricePerGpuHour * gpr * c.replicas;
    total += costForGpuMillis(c.pricePerGpuHour, gpr * durationMs) * c.replicas;
  }
  return {
    ...base,
    estimatedHourly: hourly,
    estimatedTotal: total,
    estimatedStartMs: start.startMs,
    startBasis: start.basis,
    startDetail: start.detail,
    queuedAhead: ahead.length,
    reasonCode: "none",
    reason: "",
    chosen,
  };
}
