import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** Regions the job excludes. */
export const regionExcludedFilter: Filter = {
  reason: REASON.regionExcluded,
  bucket: (ctx, bucket) => !ctx.excludedRegions.has(bucket.region),
};
