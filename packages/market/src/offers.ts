/**
 * The market's view of supply. `OfferSource` is deliberately minimal so the scheduler can adapt its cluster
 * state cheaply (see `toOfferSource`); everything downstream (order book, quote) works on `AgentOffer`s: one
 * agent's healthy GPUs of one model at the price a given pricing rule asks.
 */
import { type GpuPrice, type Micros, priceFor } from "@capa/domain";
import { lowerMedian, minOf } from "./stats.js";

export interface OfferGpu {
  index: number;
  /** Canonical model, e.g. "H100-80GB". */
  model: string;
  vramMib: number;
  /** Unhealthy GPUs are never sold, so they are not counted as capacity at all. */
  healthy: boolean;
  /** Not held by any allocation right now. */
  free: boolean;
}

/** Treated as immutable: the quote keeps what it derives from a source with the source object (a change is a new source). */
export interface OfferSource {
  agentId: string;
  region: string;
  gpus: OfferGpu[];
  prices: GpuPrice[];
  /** When the scheduler last heard from the agent, on the injected clock. */
  lastSeenMs: number;
  simulated: boolean;
  /** Draining agents accept no new work, so they offer nothing. */
  draining?: boolean;
  labels?: Record<string, string>;
}

/** The shape of the placement engine's agent view (structural: the market does not depend on placement). */
export interface AgentLike {
  id: string;
  region: string;
  gpus: readonly { index: number; model: string; vramMib: number; healthy: boolean }[];
  prices: GpuPrice[];
  lastSeenMs: number;
  simulated: boolean;
  draining: boolean;
  labels?: Record<string, string>;
}

/** Adapts an agent view plus the GPU indices its allocations hold into an offer source. */
export function toOfferSource(agent: AgentLike, busyGpuIndices: Iterable<number>): OfferSource {
  const busy = new Set(busyGpuIndices);
  return {
    agentId: agent.id,
    region: agent.region,
    gpus: agent.gpus.map((g) => ({ ...g, free: !busy.has(g.index) })),
    prices: agent.prices,
    lastSeenMs: agent.lastSeenMs,
    simulated: agent.simulated,
    draining: agent.draining,
    ...(agent.labels ? { labels: agent.labels } : {}),
  };
}

/** The price one GPU-hour of `model` costs under some rule, and whether it is interruptible capacity. */
export interface OfferPrice {
  price: Micros;
  interruptible: boolean;
}
export type PricingRule = (prices: readonly GpuPrice[], model: string) => OfferPrice | undefined;

/** Order book: on-demand capacity at its on-demand price. */
export const onDemandPricing: PricingRule = (prices, model) => {
  const price = priceFor(prices as GpuPrice[], model, false);
  return price === undefined ? undefined : { price, interruptible: false };
};

/** Order book with `interruptible`: only interruptible capacity, at its interruptible price. */
export const interruptibleOnlyPricing: PricingRule = (prices, model) => {
  const price = priceFor(prices as GpuPrice[], model, true);
  return price === undefined ? undefined : { price, interruptible: true };
};

/**
 * What a job pays, as the placement engine prices it: an on-demand job pays on-demand; an interruptible job
 * pays the cheaper of the interruptible and on-demand prices (it may run on either capacity).
 */
export function jobPricing(interruptible: boolean): PricingRule {
  if (!interruptible) return onDemandPricing;
  return (prices, model) => {
    const onDemand = onDemandPricing(prices, model);
    const spot = interruptibleOnlyPricing(prices, model);
    if (spot && (!onDemand || spot.price < onDemand.price)) return spot;
    return onDemand;
  };
}

export interface AgentOffer {
  agentId: string;
  region: string;
  model: string;
  /** Smallest VRAM among the counted GPUs. */
  vramMib: number;
  /** Healthy GPUs of this model that passed the GPU filter. */
  gpuIndices: number[];
  freeGpuIndices: number[];
  price: Micros;
  interruptible: boolean;
  lastSeenMs: number;
  simulated: boolean;
}

/**
 * Expands one source into its offers, one per GPU model it prices. GPUs that are unhealthy or rejected by
 * `gpuFilter` are not counted; a model without a price under `pricing` is not offered.
 */
export function agentOffers(
  source: OfferSource,
  pricing: PricingRule,
  gpuFilter: (gpu: OfferGpu) => boolean = () => true,
): AgentOffer[] {
  if (source.draining) return [];
  const byModel = new Map<string, OfferGpu[]>();
  for (const gpu of source.gpus) {
    if (!gpu.healthy || !gpuFilter(gpu)) continue;
    const list = byModel.get(gpu.model) ?? [];
    list.push(gpu);
    byModel.set(gpu.model, list);
  }
  const offers: AgentOffer[] = [];
  for (const [model, gpus] of byModel) {
    const priced = pricing(source.prices, model);
    if (!priced) continue;
    offers.push({
      agentId: source.agentId,
      region: source.region,
      model,
      vramMib: minOf(gpus.map((g) => g.vramMib)) ?? 0,
      gpuIndices: gpus.map((g) => g.index),
      freeGpuIndices: gpus.filter((g) => g.free).map((g) => g.index),
      price: priced.price,
      interruptible: priced.interruptible,
      lastSeenMs: source.lastSeenMs,
      simulated: source.simulated,
    });
  }
  return offers;
}

/** Offers aggregated by (region, model). Prices are per agent: each agent is one offer at one price. */
export interface OfferGroup {
  region: string;
  gpuModel: string;
  vramMib: number;
  agents: number;
  totalGpus: number;
  freeGpus: number;
  minPricePerGpuHour: Micros;
  /** Lower median over agents (see `lowerMedian`). */
  medianPricePerGpuHour: Micros;
  /** How long ago the most recently heard-from agent of the group was seen; never negative. */
  freshestAdvertAgeMs: number;
  /** True when every offer in the group is interruptible capacity. */
  interruptible: boolean;
  /** True when any of the group's capacity is simulated (never real GPUs). */
  simulated: boolean;
  agentIds: string[];
}

export function aggregateOffers(offers: readonly AgentOffer[], nowMs: number): OfferGroup[] {
  const groups = new Map<string, AgentOffer[]>();
  for (const offer of offers) {
    const key = `${offer.region}\u0000${offer.model}`;
    const list = groups.get(key) ?? [];
    list.push(offer);
    groups.set(key, list);
  }
  const out: OfferGroup[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const prices = list.map((o) => o.price);
    const freshest = Math.max(...list.map((o) => o.lastSeenMs));
    out.push({
      region: first.region,
      gpuModel: first.model,
      vramMib: minOf(list.map((o) => o.vramMib)) ?? 0,
      agents: list.length,
      totalGpus: list.reduce((n, o) => n + o.gpuIndices.length, 0),
      freeGpus: list.reduce((n, o) => n + o.freeGpuIndices.length, 0),
      minPricePerGpuHour: minOf(prices) ?? 0,
      medianPricePerGpuHour: lowerMedian(prices) ?? 0,
      freshestAdvertAgeMs: Math.max(0, nowMs - freshest),
      interruptible: list.every((o) => o.interruptible),
      simulated: list.some((o) => o.simulated),
      agentIds: list.map((o) => o.agentId).sort(),
    });
  }
  return out;
}
