import { replicaCost } from "../context.js";
import type { RequestContext, Scorer } from "../pipeline.js";

/**
 * Cost of the replica for its expected duration, egress from the data region included, in money rather than
 * rank: 100 for the cheapest offer that passed the prefilter, 50 for one costing the profile's `costScaleMicros`
 * more, falling smoothly towards 0 beyond. Absolute, because a dollar saved on a day-long job matters as much
 * as a dollar on a minute-long one: a short job's few cents rarely outweigh other concerns (headroom, packing),
 * a long job's hundreds of dollars always do. The reference comes from the index, not from the candidates
 * visited, so a score means the same whatever the search happened to look at.
 */
export function costScore(ctx: RequestContext, cost: number): number {
  const scale = ctx.profile.costScaleMicros;
  const extra = Math.max(0, cost - ctx.cheapestCost);
  return (100 * scale) / (scale + extra);
}

export const costScorer: Scorer = {
  name: "cost",
  score: (ctx, c) => costScore(ctx, c.cost),
  bound: (ctx, bucket, price) => costScore(ctx, replicaCost(ctx, price, bucket.region)),
};
