import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/**
 * The tenant's ceiling per GPU-hour (0 = none), compared with the price this job would pay on the agent
 * (interruptible price for an interruptible job where cheaper). Levels are sorted by price, so the search
 * rejects everything above the ceiling at once.
 */
export const maxPriceFilter: Filter = {
  reason: REASON.overMaxPrice,
  maxPrice: (ctx) => (ctx.spec.maxPricePerGpuHour > 0 ? ctx.spec.maxPricePerGpuHour : Number.POSITIVE_INFINITY),
  candidate: (ctx, c) => ctx.spec.maxPricePerGpuHour <= 0 || c.pricePerGpuHour <= ctx.spec.maxPricePerGpuHour,
};
