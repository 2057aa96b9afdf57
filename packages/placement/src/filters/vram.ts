import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/**
 * Every GPU of the replica must have at least the job's minimum memory. Decided per bucket when no offer in
 * it has enough (the usual case: memory follows the model), else per candidate.
 */
export const vramFilter: Filter = {
  reason: REASON.insufficientVram,
  bucket: (ctx, bucket) => bucket.maxVramMib === undefined || bucket.maxVramMib >= ctx.spec.minVramMib,
  candidate: (ctx, c) => c.offer.minVramMib >= ctx.spec.minVramMib,
};
