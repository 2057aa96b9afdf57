import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** Enough healthy, unallocated GPUs of the model for one replica (after earlier replicas of the same plan). */
export const capacityFilter: Filter = {
  reason: REASON.insufficientGpus,
  candidate: (ctx, c) => c.freeBefore >= ctx.gpusPerReplica,
};
