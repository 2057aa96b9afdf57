/**
 * Quotes (`JobService.Quote`, `capa quote`): what a spec would cost and when it could start, without
 * submitting it. The estimate, written down:
 *
 * - Feasible offers: (agent, GPU model) pairs that pass the spec's constraints (model, VRAM, regions,
 *   exclusions, residency, node selector, freshness), are priced at or below `maxPricePerGpuHour`, and hold at
 *   least one replica (`gpusPerReplica` healthy GPUs of that model on that agent).
 * - Price: the job's replicas go to the cheapest feasible offers first. When enough capacity is free now, only
 *   free GPUs are used (the price it would start at); otherwise total capacity is used (the price once it
 *   starts, optimistic). Interruptible jobs pay the cheaper of interruptible and on-demand, as placement does.
 * - Hourly = Σ price × gpusPerReplica over the chosen replicas (exact integers). Total = Σ per replica
 *   `costForGpuMillis(price, gpusPerReplica × expectedDuration)`: rounded half-up per replica, exactly as the
 *   ledger will charge each task if it runs for the expected duration. No expected duration → total 0.
 * - Start: now when free capacity holds the whole job. Otherwise the earliest expected end of running
 *   allocations on feasible agents after which enough GPUs are free; an allocation past its expected end
 *   counts as ending now; one without an expected end never frees its GPUs in the estimate (basis "unknown"
 *   when the job cannot fit without them). Pending jobs queued ahead are not modelled: the estimate is a
 *   lower bound.
 */
import { costForGpuMillis, formatUsd, type JobSpec, type Micros, residencyOfRegion } from "@capa/domain";
import { type AgentOffer, agentOffers, aggregateOffers, jobPricing, type OfferSource } from "./offers.js";

export interface RunningAllocation {
  agentId: string;
  gpuIndices: number[];
  /** When the allocation is expected to end (start + the job's expected duration); 0 = unknown. */
  expectedEndMs: number;
}

export interface QuoteQueue {
  running: readonly RunningAllocation[];
}

export interface QuoteOptions {
  /** Agents not heard from for longer are left out; 0 = keep all. */
  maxAdvertAgeMs?: number;
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

export type StartBasis = "free-now" | "expected-ends" | "unknown" | "infeasible";
export type QuoteReasonCode = "none" | "no-matching-offer" | "over-max-price" | "insufficient-capacity";

export interface QuoteResult {
  feasibleOffers: number;
  regions: RegionQuote[];
  estimatedHourly: Micros;
  estimatedTotal: Micros;
  /** Undefined when no start can be estimated (see `startBasis`). */
  estimatedStartMs: number | undefined;
  startBasis: StartBasis;
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

function specOffers(sources: readonly OfferSource[], spec: JobSpec, nowMs: number, options: QuoteOptions) {
  const models = new Set(spec.gpuModels.map((m) => m.toUpperCase()));
  const pricing = jobPricing(spec.interruptible);
  const out: AgentOffer[] = [];
  for (const source of sources) {
    if (!agentMatchesSpec(source, spec, nowMs, options.maxAdvertAgeMs)) continue;
    const gpuOk = (g: { model: string; vramMib: number }) =>
      (models.size === 0 || models.has(g.model.toUpperCase())) && g.vramMib >= spec.minVramMib;
    for (const offer of agentOffers(source, pricing, gpuOk)) {
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

/** Greedy cheapest-first choice of `replicas` replicas; fewer when capacity runs out. */
function choose(offers: readonly AgentOffer[], replicas: number, gpusPerReplica: number, freeOnly: boolean) {
  const chosen: ChosenReplicas[] = [];
  let left = replicas;
  for (const offer of offers) {
    if (left === 0) break;
    const gpus = freeOnly ? offer.freeGpuIndices.length : offer.gpuIndices.length;
    const take = Math.min(left, Math.floor(gpus / gpusPerReplica));
    if (take > 0) {
      chosen.push({ ...priced(offer), replicas: take });
      left -= take;
    }
  }
  return { chosen, placed: replicas - left };
}

function replicaCapacity(offers: readonly AgentOffer[], gpusPerReplica: number, free: boolean): number {
  let total = 0;
  for (const o of offers) total += Math.floor((free ? o.freeGpuIndices.length : o.gpuIndices.length) / gpusPerReplica);
  return total;
}

/** Earliest time the feasible offers hold `replicas` free replicas, from running allocations' expected ends. */
function estimateStart(
  offers: readonly AgentOffer[],
  queue: QuoteQueue,
  replicas: number,
  gpusPerReplica: number,
  nowMs: number,
): number | undefined {
  const free = offers.map((o) => new Set(o.freeGpuIndices));
  const byAgent = new Map<string, number[]>();
  offers.forEach((o, i) => {
    byAgent.set(o.agentId, [...(byAgent.get(o.agentId) ?? []), i]);
  });
  const capacity = () => free.reduce((n, set) => n + Math.floor(set.size / gpusPerReplica), 0);
  const events = queue.running
    .filter((a) => a.expectedEndMs > 0 && byAgent.has(a.agentId))
    .map((a) => ({ ...a, at: Math.max(a.expectedEndMs, nowMs) }))
    .sort((a, b) => a.at - b.at);
  for (let i = 0; i < events.length; ) {
    const at = events[i]!.at;
    for (; i < events.length && events[i]!.at === at; i++) {
      const event = events[i]!;
      for (const index of byAgent.get(event.agentId) ?? []) {
        const offer = offers[index]!;
        for (const gpu of event.gpuIndices) if (offer.gpuIndices.includes(gpu)) free[index]!.add(gpu);
      }
    }
    if (capacity() >= replicas) return at;
  }
  return undefined;
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
  const candidates = specOffers(sources, spec, nowMs, options);
  const maxPrice = spec.maxPricePerGpuHour;
  const feasible = maxPrice > 0 ? candidates.filter((o) => o.price <= maxPrice) : candidates;
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
  const totalCapacity = replicaCapacity(feasible, gpr, false);
  if (totalCapacity < replicas) {
    return infeasible(
      "insufficient-capacity",
      `feasible offers hold at most ${totalCapacity} of ${replicas} replica(s) of ${gpr} GPU(s)`,
    );
  }

  const freeNow = replicaCapacity(feasible, gpr, true) >= replicas;
  const { chosen } = choose(feasible, replicas, gpr, freeNow);
  const durationMs = Math.max(0, spec.expectedDurationSeconds) * 1000;
  let hourly = 0;
  let total = 0;
  for (const c of chosen) {
    hourly += c.pricePerGpuHour * gpr * c.replicas;
    total += costForGpuMillis(c.pricePerGpuHour, gpr * durationMs) * c.replicas;
  }
  const start = freeNow ? nowMs : estimateStart(feasible, queue, replicas, gpr, nowMs);
  return {
    ...base,
    estimatedHourly: hourly,
    estimatedTotal: total,
    estimatedStartMs: start,
    startBasis: freeNow ? "free-now" : start === undefined ? "unknown" : "expected-ends",
    reasonCode: "none",
    reason: "",
    chosen,
  };
}
