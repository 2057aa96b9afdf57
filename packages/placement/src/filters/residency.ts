import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/**
 * Data residency is a legal constraint: a job with `residency` "eu" runs only on agents whose residency is "eu".
 * Never relaxed, never traded against cost. Buckets are keyed by residency, so this is decided per bucket.
 */
export const residencyFilter: Filter = {
  reason: REASON.residencyMismatch,
  bucket: (ctx, bucket) => ctx.spec.residency === "" || ctx.spec.residency === bucket.residency,
};
