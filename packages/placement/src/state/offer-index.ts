/**
 * The index that keeps one decision from scanning every agent.
 *
 * The unit is an *offer*: one agent's GPUs of one model. Offers are grouped in buckets by (model, region,
 * residency); inside a bucket, by price level (ascending) and then by free-GPU count, each list sorted by agent
 * id. A search walks buckets that pass the request's bucket filters, levels in price order, and free counts
 * from the replica's GPU need upwards, so it touches only offers that could host the replica, cheapest first.
 * Buckets also group offers by fabric domain with an incrementally kept free-GPU sum, so a gang search skips
 * domains that cannot hold it without looking inside them.
 *
 * There are two indexes, one per price mode: on-demand (what a non-interruptible job pays) and interruptible
 * (the cheaper of the interruptible and on-demand prices: an interruptible job may use either).
 */
import type { AgentView } from "../model.js";
import { type HasAgentId, insertSorted, removeSorted } from "./sorted.js";

export type PriceMode = "on-demand" | "interruptible";
export const PRICE_MODES: readonly PriceMode[] = ["on-demand", "interruptible"];

/** One agent's GPUs of one model, as offered at the agent's prices. */
export class Offer implements HasAgentId {
  readonly agentId: string;
  /** The agent's current view: replaced by `ClusterState.touchAgent` when only its lastSeenMs changes. */
  agent: AgentView;
  /** Free (healthy, unallocated) GPUs of this model; kept up to date by ClusterState. */
  free = 0;
  /** Where the offer sits in each index, so moving it on a free-count change is O(log n). */
  readonly slots: Partial<Record<PriceMode, { bucket: Bucket; level: Level }>> = {};

  constructor(
    agent: AgentView,
    readonly model: string,
    /** Healthy GPU indices of this model, ascending. */
    readonly healthyIndices: readonly number[],
    /** Smallest memory among those GPUs: what a replica can count on. */
    readonly minVramMib: number,
    /** undefined = not offered on demand. */
    readonly onDemandPrice: number | undefined,
    /** undefined = no interruptible capacity. */
    readonly interruptiblePrice: number | undefined,
    readonly domainKey: string,
  ) {
    this.agentId = agent.id;
    this.agent = agent;
  }

  /** The price a job pays in `mode`, and whether it runs on interruptible capacity at that price. */
  priceIn(mode: PriceMode): { price: number; interruptible: boolean } | undefined {
    if (mode === "on-demand") {
      return this.onDemandPrice === undefined ? undefined : { price: this.onDemandPrice, interruptible: false };
    }
    const spot = this.interruptiblePrice;
    const onDemand = this.onDemandPrice;
    // Equal prices: take on-demand capacity, it costs the same and is not reclaimed.
    if (spot !== undefined && (onDemand === undefined || spot < onDemand)) return { price: spot, interruptible: true };
    return onDemand === undefined ? undefined : { price: onDemand, interruptible: false };
  }
}

/** Offers of one bucket at one price, by free-GPU count. */
export class Level {
  /** byFree[n] = offers with exactly n free GPUs, sorted by agent id. */
  readonly byFree: Offer[][] = [];
  size = 0;
  constructor(readonly price: number) {}

  add(offer: Offer): void {
    let list = this.byFree[offer.free];
    if (!list) {
      for (let n = this.byFree.length; n <= offer.free; n++) this.byFree[n] = [];
      list = this.byFree[offer.free]!;
    }
    insertSorted(list, offer);
    this.size++;
  }

  remove(offer: Offer, free: number): void {
    const list = this.byFree[free];
    if (list && removeSorted(list, offer)) this.size--;
  }

  /** Offers with fewer than `need` free GPUs: counted as rejections without being visited. */
  countBelow(need: number): number {
    let n = 0;
    for (let f = 0; f < need && f < this.byFree.length; f++) n += this.byFree[f]!.length;
    return n;
  }
}

/**
 * The smallest (or largest) of a multiset of numbers, kept as members come and go. A removal rescans only the
 * distinct values, and only when the last member holding the extreme leaves: with 10,000 agents of a few prices
 * and VRAM sizes, rescanning the members on each removal (every advert re-indexes its agent) cost the scheduler
 * most of a core.
 */
export class Extreme {
  private readonly counts = new Map<number, number>();
  private current: number;
  constructor(private readonly kind: "min" | "max") {
    this.current = kind === "min" ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  }

  /** The extreme; ±Infinity when empty (+ for min, − for max). */
  get value(): number {
    return this.current;
  }

  add(v: number): void {
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    if (this.kind === "min" ? v < this.current : v > this.current) this.current = v;
  }

  remove(v: number): void {
    const n = this.counts.get(v);
    if (n === undefined) return;
    if (n > 1) {
      this.counts.set(v, n - 1);
      return;
    }
    this.counts.delete(v);
    if (v !== this.current) return;
    this.current = this.kind === "min" ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    for (const k of this.counts.keys()) if (this.kind === "min" ? k < this.current : k > this.current) this.current = k;
  }
}

/** Offers of one bucket in one fabric domain. */
export class DomainGroup {
  readonly offers: Offer[] = [];
  freeSum = 0;
  /** The offers' prices in the bucket's mode: `minPrice` orders domains for the gang search. */
  readonly prices = new Extreme("min");
  /** byFree[n] = how many offers have exactly n free GPUs: counts replica slots without visiting offers. */
  private readonly byFree: number[] = [];
  constructor(readonly key: string) {}

  get minPrice(): number {
    return this.prices.value;
  }

  count(free: number, delta: number): void {
    for (let n = this.byFree.length; n <= free; n++) this.byFree[n] = 0;
    this.byFree[free]! += delta;
    this.freeSum += free * delta;
  }

  /** Replicas of `need` GPUs the domain's free GPUs could host (before per-candidate filters). */
  slots(need: number): number {
    if (need <= 0) return Number.POSITIVE_INFINITY;
    let slots = 0;
    for (let f = need; f < this.byFree.length; f++) slots += this.byFree[f]! * Math.floor(f / need);
    return slots;
  }
}

/**
 * Free and healthy GPUs over a set of buckets of one price mode: all of one GPU model (any region), or all of one
 * region (any model). Kept by the buckets as their offers change, so the scarcity scorer reads a pool in O(1).
 */
export class Pool {
  free = 0;
  capacity = 0;
}

/** What identifies a bucket: bucket filters decide on this alone. */
export interface BucketKey {
  readonly model: string;
  readonly region: string;
  readonly residency: string;
  /** Largest VRAM among the bucket's offers; undefined when not known (CPU-only search). */
  readonly maxVramMib?: number;
}

export class Bucket implements BucketKey {
  readonly key: string;
  /** Ascending by price. */
  readonly levels: Level[] = [];
  readonly domains = new Map<string, DomainGroup>();
  private domainOrder: DomainGroup[] | undefined;
  size = 0;
  freeSum = 0;
  /** Per-offer VRAM in the bucket (its smallest GPU's): see `maxVramMib`. */
  private readonly vram = new Extreme("max");
  /** Healthy GPUs of all offers in the bucket, free or not. */
  capacity = 0;

  constructor(
    readonly mode: PriceMode,
    readonly model: string,
    readonly region: string,
    readonly residency: string,
    /** The pools of the bucket's model and of its region (shared with the index's other buckets). */
    readonly modelPool: Pool = new Pool(),
    readonly regionPool: Pool = new Pool(),
  ) {
    this.key = bucketKey(model, region, residency);
  }

  private countPools(free: number, capacity: number): void {
    this.modelPool.free += free;
    this.modelPool.capacity += capacity;
    this.regionPool.free += free;
    this.regionPool.capacity += capacity;
  }

  /** Largest per-offer VRAM in the bucket (0 when empty): a job needing more skips the bucket unvisited. */
  get maxVramMib(): number {
    return Math.max(0, this.vram.value);
  }

  get minPrice(): number {
    return this.levels[0]?.price ?? Number.POSITIVE_INFINITY;
  }
  get maxPrice(): number {
    return this.levels[this.levels.length - 1]?.price ?? Number.NEGATIVE_INFINITY;
  }

  /** Fabric domains, cheapest first (ties by key), recomputed only after membership changes. */
  domainsByPrice(): DomainGroup[] {
    if (!this.domainOrder) {
      this.domainOrder = [...this.domains.values()].sort((a, b) =>
        a.minPrice !== b.minPrice ? a.minPrice - b.minPrice : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
      );
    }
    return this.domainOrder;
  }

  add(offer: Offer, price: number): void {
    let at = 0;
    while (at < this.levels.length && this.levels[at]!.price < price) at++;
    let level = this.levels[at];
    if (!level || level.price !== price) {
      level = new Level(price);
      this.levels.splice(at, 0, level);
    }
    level.add(offer);
    offer.slots[this.mode] = { bucket: this, level };
    let domain = this.domains.get(offer.domainKey);
    if (!domain) {
      domain = new DomainGroup(offer.domainKey);
      this.domains.set(offer.domainKey, domain);
    }
    insertSorted(domain.offers, offer);
    domain.count(offer.free, 1);
    domain.prices.add(price);
    this.domainOrder = undefined;
    this.size++;
    this.freeSum += offer.free;
    this.capacity += offer.healthyIndices.length;
    this.countPools(offer.free, offer.healthyIndices.length);
    this.vram.add(offer.minVramMib);
  }

  remove(offer: Offer): void {
    const slot = offer.slots[this.mode];
    if (!slot) return;
    slot.level.remove(offer, offer.free);
    if (slot.level.size === 0) this.levels.splice(this.levels.indexOf(slot.level), 1);
    const domain = this.domains.get(offer.domainKey);
    if (domain && removeSorted(domain.offers, offer)) {
      domain.count(offer.free, -1);
      domain.prices.remove(slot.level.price);
      if (domain.offers.length === 0) this.domains.delete(offer.domainKey);
    }
    this.domainOrder = undefined;
    delete offer.slots[this.mode];
    this.size--;
    this.freeSum -= offer.free;
    this.capacity -= offer.healthyIndices.length;
    this.countPools(-offer.free, -offer.healthyIndices.length);
    this.vram.remove(offer.minVramMib);
  }

  /** Moves an offer to its new free count; call with the count it had before the change. */
  moveFree(offer: Offer, oldFree: number): void {
    const slot = offer.slots[this.mode];
    if (!slot) return;
    slot.level.remove(offer, oldFree);
    slot.level.add(offer);
    const delta = offer.free - oldFree;
    const domain = this.domains.get(offer.domainKey);
    if (domain) {
      domain.count(oldFree, -1);
      domain.count(offer.free, 1);
    }
    this.freeSum += delta;
    this.countPools(delta, 0);
  }
}

export function bucketKey(model: string, region: string, residency: string): string {
  return `${model}|${region}|${residency}`;
}

/** One price mode's buckets. */
export class OfferIndex {
  readonly buckets = new Map<string, Bucket>();
  /** Buckets per GPU model: the prefilter's entry point when a job names its accepted models. */
  readonly byModel = new Map<string, Bucket[]>();
  /** Free and healthy GPUs per model and per region, over every bucket of the index (see Pool). */
  readonly modelPools = new Map<string, Pool>();
  readonly regionPools = new Map<string, Pool>();

  private ordered: Bucket[] | undefined;
  /** Offers in the index, in total and per model: rejections by model are counted without visiting buckets. */
  offerCount = 0;
  readonly offersByModel = new Map<string, number>();

  constructor(readonly mode: PriceMode) {}

  /** Every bucket, sorted by key: iteration order independent of insertion order. */
  allBuckets(): Bucket[] {
    if (!this.ordered) this.ordered = [...this.buckets.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    return this.ordered;
  }

  add(offer: Offer): void {
    const priced = offer.priceIn(this.mode);
    if (!priced) return;
    const { agent } = offer;
    const key = bucketKey(offer.model, agent.region, agent.residency);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new Bucket(
        this.mode,
        offer.model,
        agent.region,
        agent.residency,
        poolOf(this.modelPools, offer.model),
        poolOf(this.regionPools, agent.region),
      );
      this.buckets.set(key, bucket);
      this.ordered = undefined;
      const list = this.byModel.get(offer.model) ?? [];
      list.push(bucket);
      list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.byModel.set(offer.model, list);
    }
    bucket.add(offer, priced.price);
    this.offerCount++;
    this.offersByModel.set(offer.model, (this.offersByModel.get(offer.model) ?? 0) + 1);
  }

  remove(offer: Offer): void {
    const slot = offer.slots[this.mode];
    if (!slot) return;
    const { bucket } = slot;
    bucket.remove(offer);
    this.offerCount--;
    const left = (this.offersByModel.get(offer.model) ?? 1) - 1;
    if (left === 0) this.offersByModel.delete(offer.model);
    else this.offersByModel.set(offer.model, left);
    if (bucket.size === 0) {
      this.buckets.delete(bucket.key);
      this.ordered = undefined;
      const list = this.byModel.get(bucket.model) ?? [];
      const rest = list.filter((b) => b !== bucket);
      if (rest.length === 0) this.byModel.delete(bucket.model);
      else this.byModel.set(bucket.model, rest);
    }
  }
}

function poolOf(pools: Map<string, Pool>, key: string): Pool {
  let pool = pools.get(key);
  if (!pool) {
    pool = new Pool();
    pools.set(key, pool);
  }
  return pool;
}
