/**
 * The advert checks, composed in one place (order = which reason a bad advert is refused with). Each check is one
 * file and one line here; every refusal carries its named reason.
 */
import { gpuIndices } from "./gpu-indices.js";
import { gpuUuidsNotHeldElsewhere, gpuUuidsUnique } from "./gpu-uuids.js";
import { pricesBelowCeiling, pricesValid } from "./price-bounds.js";
import { agentIdMatchesSubject, bootIdOwned, regionMatchesSubject } from "./subject-identity.js";
import type { AdvertCheck, AdvertCheckContext } from "./types.js";

export type { AdvertCheck, AdvertCheckContext, KnownAgent } from "./types.js";

export const ADVERT_CHECKS: readonly AdvertCheck[] = [
  bootIdOwned,
  agentIdMatchesSubject,
  regionMatchesSubject,
  gpuIndices,
  gpuUuidsUnique,
  gpuUuidsNotHeldElsewhere,
  pricesValid,
  pricesBelowCeiling,
];

export interface AdvertRefusal {
  reason: string;
  detail: string;
}

export function advertRefusal(
  ctx: AdvertCheckContext,
  checks: readonly AdvertCheck[] = ADVERT_CHECKS,
): AdvertRefusal | undefined {
  for (const c of checks) {
    const detail = c.check(ctx);
    if (detail !== undefined) return { reason: c.reason, detail };
  }
  return undefined;
}
