/** Test fixtures shared by the market's unit tests (not exported from the package). */
import { type GpuPrice, type Micros, parseUsd } from "@capa/domain";
import type { OfferSource } from "../offers.js";

export const usd = (text: string): Micros => parseUsd(text);

export function price(gpuModel: string, onDemand: string, interruptible = "0"): GpuPrice {
  return { gpuModel, onDemandPerHour: usd(onDemand), interruptiblePerHour: usd(interruptible) };
}

const VRAM: Record<string, number> = {
  "H100-80GB": 81_920,
  "A100-40GB": 40_960,
  "A100-80GB": 81_920,
  "L4-24GB": 24_576,
};

/** An agent with `count` healthy GPUs of `model`, the first `busy` of them held by allocations. */
export function source(
  agentId: string,
  region: string,
  model: string,
  prices: GpuPrice[],
  options: { count?: number; busy?: number; lastSeenMs?: number; simulated?: boolean; unhealthy?: number } = {},
): OfferSource {
  const count = options.count ?? 8;
  return {
    agentId,
    region,
    gpus: Array.from({ length: count }, (_, index) => ({
      index,
      model,
      vramMib: VRAM[model] ?? 16_384,
      healthy: index < count - (options.unhealthy ?? 0),
      free: index >= (options.busy ?? 0),
    })),
    prices,
    lastSeenMs: options.lastSeenMs ?? 1_000,
    simulated: options.simulated ?? false,
  };
}
