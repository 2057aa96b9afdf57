/**
 * Agent prices from the public price catalogs (@capa/catalog). Pure: the catalog entries are an argument.
 * - `capa agent` without `--price` advertises the cheapest catalog price of every model in its region, so
 *   whatever GPUs nvidia-smi finds are priced.
 * - `capa up` gives each simulated agent in a region a different provider's price (the cheapest provider to
 *   the first agent, the next one to the second, ...) so the local market has a spread to choose from.
 */
import { type CatalogEntry, priceBook } from "@capa/catalog";
import type { GpuPrice } from "@capa/domain";

/** Every model priced in `region` (cheapest offer); for a region the catalogs do not know, the cheapest anywhere. */
export function regionPrices(entries: readonly CatalogEntry[], region: string): { prices: GpuPrice[]; from: string } {
  const book = priceBook(entries);
  const inRegion = book.get(region);
  if (inRegion && inRegion.size > 0) return { prices: sortByModel([...inRegion.values()]), from: region };
  const cheapest = new Map<string, GpuPrice>();
  for (const models of book.values()) {
    for (const price of models.values()) {
      const current = cheapest.get(price.gpuModel);
      if (!current || price.onDemandPerHour < current.onDemandPerHour) cheapest.set(price.gpuModel, price);
    }
  }
  return { prices: sortByModel([...cheapest.values()]), from: "all regions" };
}

interface ProviderPrice {
  provider: string;
  price: GpuPrice;
}

/** Per provider, the cheapest on-demand and interruptible price of one model in one region, cheapest first. */
export function providerPrices(entries: readonly CatalogEntry[], region: string, model: string): ProviderPrice[] {
  const byProvider = new Map<string, GpuPrice>();
  for (const e of entries) {
    if (e.region !== region || e.gpuModel !== model) continue;
    const current = byProvider.get(e.provider);
    const onDemand = Math.min(current?.onDemandPerHour ?? Number.MAX_SAFE_INTEGER, e.onDemandPerGpuHour);
    const spots = [current?.interruptiblePerHour ?? 0, e.interruptiblePerGpuHour].filter((p) => p > 0);
    const spot = spots.length > 0 ? Math.min(...spots) : 0;
    byProvider.set(e.provider, {
      gpuModel: model,
      onDemandPerHour: onDemand,
      interruptiblePerHour: spot > 0 && spot < onDemand ? spot : 0,
    });
  }
  return [...byProvider]
    .map(([provider, price]) => ({ provider, price }))
    .sort((a, b) => a.price.onDemandPerHour - b.price.onDemandPerHour || a.provider.localeCompare(b.provider));
}

export interface SimulatedAgentPricing {
  prices: GpuPrice[];
  /** The provider whose prices the agent took for its first model ("catalog" when none priced it there). */
  provider: string;
  /** Models nobody in any catalog prices: the agent advertises them unpriced (the scheduler cannot sell them). */
  unpriced: string[];
}

/** Prices for the `agentIndex`-th (0-based) simulated agent of a region offering `models`. */
export function simulatedAgentPricing(
  entries: readonly CatalogEntry[],
  region: string,
  models: readonly string[],
  agentIndex: number,
): SimulatedAgentPricing {
  const fallback = new Map(regionPrices(entries, "\0no-such-region").prices.map((p) => [p.gpuModel, p]));
  const prices: GpuPrice[] = [];
  const unpriced: string[] = [];
  let provider = "";
  for (const model of [...new Set(models)]) {
    const offers = providerPrices(entries, region, model);
    const pick = offers[Math.min(agentIndex, offers.length - 1)];
    if (pick) {
      prices.push(pick.price);
      provider ||= pick.provider;
      continue;
    }
    const anywhere = fallback.get(model);
    if (anywhere) prices.push(anywhere);
    else unpriced.push(model);
  }
  return { prices, provider: provider || "catalog", unpriced };
}

function sortByModel(prices: GpuPrice[]): GpuPrice[] {
  return prices.sort((a, b) => a.gpuModel.localeCompare(b.gpuModel));
}
