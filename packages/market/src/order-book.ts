/**
 * The order book (`JobService.ListOffers`, `capa offers`): supply aggregated by (region, GPU model), filtered
 * and sorted like `vastai search offers`.
 *
 * Sort keys and their natural direction: `price` cheapest first, `free` most free GPUs first, `region` and
 * `model` A→Z, `vram` largest first, `age` freshest advert first. A leading `-` reverses the direction
 * (`-price`: most expensive first). Ties always break by price, region, then model, so the output is stable.
 */
import type { Micros } from "@capa/domain";
import { InvalidMarketQueryError } from "./errors.js";
import { regionMatcher } from "./glob.js";
import {
  type AgentOffer,
  agentOffers,
  aggregateOffers,
  interruptibleOnlyPricing,
  type OfferGroup,
  type OfferSource,
  onDemandPricing,
} from "./offers.js";

export interface OrderBookFilter {
  /** Canonical model ("H100-80GB", case ignored) or a bare family ("H100") matching every size. */
  gpuModel?: string;
  minVramMib?: number;
  /** Glob over region names: "eu-*", "*-west". */
  regionGlob?: string;
  /** Per agent: offers priced above this are left out; 0 = no cap. */
  maxPricePerGpuHour?: Micros;
  /** Show interruptible capacity at its interruptible price instead of on-demand capacity. */
  interruptible?: boolean;
  /** Agents not heard from for longer are left out; 0 = keep all. */
  maxAdvertAgeMs?: number;
}

export const ORDER_BOOK_SORT_KEYS = ["price", "free", "region", "model", "vram", "age"] as const;
export type OrderBookSortField = (typeof ORDER_BOOK_SORT_KEYS)[number];

export interface OrderBookSort {
  /** "price" (default), "-price", "free", "region", "model", "vram", "age", each optionally with "-". */
  by?: string;
  /** 0 = no limit. */
  limit?: number;
}

export interface ParsedSort {
  field: OrderBookSortField;
  reversed: boolean;
}

export function parseSortKey(text: string | undefined): ParsedSort {
  const raw = (text ?? "").trim();
  if (raw === "") return { field: "price", reversed: false };
  const reversed = raw.startsWith("-");
  const field = (reversed ? raw.slice(1) : raw).toLowerCase();
  if (!(ORDER_BOOK_SORT_KEYS as readonly string[]).includes(field)) {
    throw new InvalidMarketQueryError([
      {
        field: "sort_by",
        message: `unknown sort key ${JSON.stringify(raw)}; use one of ${ORDER_BOOK_SORT_KEYS.join(", ")} (prefix "-" to reverse)`,
      },
    ]);
  }
  return { field: field as OrderBookSortField, reversed };
}

/** "H100-80GB" matches exactly (case ignored); "H100" (no size) matches every H100 size. */
export function gpuModelMatcher(filter: string | undefined): (model: string) => boolean {
  const wanted = (filter ?? "").trim().toUpperCase();
  if (wanted === "") return () => true;
  if (/-\d+GB$/.test(wanted)) return (model) => model.toUpperCase() === wanted;
  return (model) => {
    const upper = model.toUpperCase();
    return upper === wanted || upper.startsWith(`${wanted}-`);
  };
}

function validateFilter(filter: OrderBookFilter, sort: OrderBookSort): void {
  const violations: { field: string; message: string }[] = [];
  const nonNegative = (value: number | undefined, field: string) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      violations.push({ field, message: `must be a non-negative integer, got ${value}` });
    }
  };
  nonNegative(filter.minVramMib, "min_vram_mib");
  nonNegative(filter.maxPricePerGpuHour, "max_price_micros_per_gpu_hour");
  nonNegative(filter.maxAdvertAgeMs, "max_advert_age_ms");
  nonNegative(sort.limit, "limit");
  if (violations.length > 0) throw new InvalidMarketQueryError(violations);
}

/** The offers of every source that pass the filter, before aggregation (for `raw` listings). */
export function filteredOffers(sources: readonly OfferSource[], filter: OrderBookFilter, nowMs: number): AgentOffer[] {
  const inRegion = regionMatcher(filter.regionGlob);
  const modelOk = gpuModelMatcher(filter.gpuModel);
  const minVram = filter.minVramMib ?? 0;
  const maxPrice = filter.maxPricePerGpuHour ?? 0;
  const maxAge = filter.maxAdvertAgeMs ?? 0;
  const pricing = filter.interruptible ? interruptibleOnlyPricing : onDemandPricing;
  const out: AgentOffer[] = [];
  for (const source of sources) {
    if (!inRegion(source.region)) continue;
    if (maxAge > 0 && nowMs - source.lastSeenMs > maxAge) continue;
    for (const offer of agentOffers(source, pricing, (g) => modelOk(g.model) && g.vramMib >= minVram)) {
      if (maxPrice > 0 && offer.price > maxPrice) continue;
      out.push(offer);
    }
  }
  return out;
}

const COMPARE: Record<OrderBookSortField, (a: OfferGroup, b: OfferGroup) => number> = {
  price: (a, b) => a.minPricePerGpuHour - b.minPricePerGpuHour || a.medianPricePerGpuHour - b.medianPricePerGpuHour,
  free: (a, b) => b.freeGpus - a.freeGpus,
  region: (a, b) => compareText(a.region, b.region),
  model: (a, b) => compareText(a.gpuModel, b.gpuModel),
  vram: (a, b) => b.vramMib - a.vramMib,
  age: (a, b) => a.freshestAdvertAgeMs - b.freshestAdvertAgeMs,
};

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const TIE_BREAK = (a: OfferGroup, b: OfferGroup) => COMPARE.price(a, b) || COMPARE.region(a, b) || COMPARE.model(a, b);

/** Aggregated, filtered, sorted and limited offers. Throws InvalidMarketQueryError for a bad sort key or number. */
export function orderBook(
  sources: readonly OfferSource[],
  filter: OrderBookFilter,
  sort: OrderBookSort,
  nowMs: number,
): OfferGroup[] {
  validateFilter(filter, sort);
  const { field, reversed } = parseSortKey(sort.by);
  const groups = aggregateOffers(filteredOffers(sources, filter, nowMs), nowMs);
  const primary = COMPARE[field];
  groups.sort((a, b) => (reversed ? -primary(a, b) : primary(a, b)) || TIE_BREAK(a, b));
  const limit = sort.limit ?? 0;
  return limit > 0 ? groups.slice(0, limit) : groups;
}
