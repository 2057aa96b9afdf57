/**
 * Provider price lists: the agent's config (`prices: "H100-80GB=2.49/1.20,A100-40GB=1.10"`) and
 * `capa agent price set MODEL ON_DEMAND [INTERRUPTIBLE]`. Dollars per GPU-hour in, micros out (at most 6
 * decimals, never rounded: see domain money.ts). A change returns a new list; `pricesDiffer` tells the agent
 * whether to re-advertise. Running allocations keep the price locked at their placement whatever changes here.
 */
import { formatUsd, type GpuPrice, type Micros, MoneyError, parseUsd } from "@capa/domain";
import { InvalidPriceSpecError } from "./errors.js";

function usd(text: string, field: string): Micros {
  try {
    const micros = parseUsd(text);
    if (micros < 0) throw new MoneyError(`price must not be negative: ${text}`);
    return micros;
  } catch (cause) {
    throw new InvalidPriceSpecError([{ field, message: (cause as Error).message }]);
  }
}

/** Parses "MODEL=ON_DEMAND[/INTERRUPTIBLE],..." (dollars per GPU-hour); a model listed twice is an error. */
export function parsePriceList(text: string, field = "prices"): GpuPrice[] {
  const out: GpuPrice[] = [];
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const match = /^([A-Za-z0-9_.-]+)\s*=\s*([^/\s]+)(?:\s*\/\s*(\S+))?$/.exec(part);
    if (!match) {
      throw new InvalidPriceSpecError([
        { field, message: `expected MODEL=ON_DEMAND[/INTERRUPTIBLE], e.g. H100-80GB=2.49/1.20, got ${part}` },
      ]);
    }
    const gpuModel = match[1]!;
    if (out.some((p) => p.gpuModel === gpuModel)) {
      throw new InvalidPriceSpecError([{ field, message: `model ${gpuModel} is priced twice` }]);
    }
    out.push({
      gpuModel,
      onDemandPerHour: usd(match[2]!, `${field}.${gpuModel}.on_demand`),
      interruptiblePerHour: match[3] ? usd(match[3], `${field}.${gpuModel}.interruptible`) : 0,
    });
  }
  return out;
}

export function formatPriceList(prices: readonly GpuPrice[]): string {
  const dollars = (m: Micros) => formatUsd(m).replace(/^\$/, "");
  return prices
    .map(
      (p) =>
        `${p.gpuModel}=${dollars(p.onDemandPerHour)}${p.interruptiblePerHour > 0 ? `/${dollars(p.interruptiblePerHour)}` : ""}`,
    )
    .join(",");
}

/** Sets (or adds) one model's prices; an interruptible price of 0 withdraws interruptible capacity. */
export function setPrice(prices: readonly GpuPrice[], price: GpuPrice): GpuPrice[] {
  const next = prices.filter((p) => p.gpuModel !== price.gpuModel);
  next.push({ ...price });
  return next.sort((a, b) => (a.gpuModel < b.gpuModel ? -1 : a.gpuModel > b.gpuModel ? 1 : 0));
}

export function removePrice(prices: readonly GpuPrice[], gpuModel: string): GpuPrice[] {
  return prices.filter((p) => p.gpuModel !== gpuModel);
}

/** True when the lists price anything differently (order ignored): the agent re-advertises. */
export function pricesDiffer(a: readonly GpuPrice[], b: readonly GpuPrice[]): boolean {
  if (a.length !== b.length) return true;
  const byModel = new Map(a.map((p) => [p.gpuModel, p]));
  return b.some((p) => {
    const q = byModel.get(p.gpuModel);
    return !q || q.onDemandPerHour !== p.onDemandPerHour || q.interruptiblePerHour !== p.interruptiblePerHour;
  });
}
