import type { RequestContext, Scorer } from "../pipeline.js";
import type { Bucket } from "../state/offer-index.js";

/** Free share of a (model, region) bucket below which taking more of it is penalised. */
export const HEADROOM_TARGET = 0.25;

function headroom(ctx: RequestContext, bucket: Bucket | undefined): number {
  if (!bucket || bucket.capacity === 0) return 100;
  const freeAfter = (bucket.freeSum - ctx.gpusPerReplica) / bucket.capacity;
  return 100 * Math.max(0, Math.min(1, freeAfter / HEADROOM_TARGET));
}

/**
 * Keep some of every (model, region) free: a job that could run in many places should not take the last GPUs
 * of a region that a residency- or region-bound job may need next. Jobs bound to one bucket are unaffected (all
 * their candidates score alike). Weighed against absolute cost, it moves short, cheap jobs and leaves long,
 * expensive ones where they are cheapest.
 */
export const headroomScorer: Scorer = {
  name: "headroom",
  score: (ctx, c) => headroom(ctx, c.offer.slots[ctx.mode]?.bucket),
  bound: (ctx, bucket) => headroom(ctx, bucket),
};
