/** Prices are integer micro-dollars per GPU-hour, never negative, never above the operator's ceiling. */
import type { AdvertCheck } from "./types.js";

export const pricesValid: AdvertCheck = {
  reason: "invalid-price",
  check: ({ advert }) => {
    for (const p of advert.prices) {
      for (const [what, v] of [
        ["on-demand", p.onDemandPerHour],
        ["interruptible", p.interruptiblePerHour],
      ] as const) {
        if (!Number.isSafeInteger(v) || v < 0) return `${p.gpuModel} ${what} price ${v} is not a non-negative integer`;
      }
    }
    return undefined;
  },
};

export const pricesBelowCeiling: AdvertCheck = {
  reason: "price-above-ceiling",
  check: ({ advert, maxPricePerGpuHour }) => {
    const over = advert.prices.find(
      (p) => p.onDemandPerHour > maxPricePerGpuHour || p.interruptiblePerHour > maxPricePerGpuHour,
    );
    return over
      ? `${over.gpuModel} at ${Math.max(over.onDemandPerHour, over.interruptiblePerHour)} micro-$/GPU-h is above the ceiling ${maxPricePerGpuHour}`
      : undefined;
  },
};
