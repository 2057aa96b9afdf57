import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** The job's allowed regions (empty = anywhere); an inference replica is further pinned to its demand region. */
export const regionAllowedFilter: Filter = {
  reason: REASON.regionNotAllowed,
  bucket: (ctx, bucket) =>
    (ctx.allowedRegions === undefined || ctx.allowedRegions.has(bucket.region)) &&
    (ctx.onlyRegion === undefined || ctx.onlyRegion === bucket.region),
};
