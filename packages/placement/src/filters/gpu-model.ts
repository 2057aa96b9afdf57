import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** The job's accepted GPU models (empty list = any model). Decided per bucket: buckets are per model. */
export const gpuModelFilter: Filter = {
  reason: REASON.gpuModelNotAccepted,
  bucket: (ctx, bucket) => ctx.acceptedModels === undefined || ctx.acceptedModels.has(bucket.model),
};
