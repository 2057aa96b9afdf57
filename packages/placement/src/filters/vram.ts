import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** Every GPU of the replica must have at least the job's minimum memory. */
export const vramFilter: Filter = {
  reason: REASON.insufficientVram,
  candidate: (ctx, c) => c.offer.minVramMib >= ctx.spec.minVramMib,
};
