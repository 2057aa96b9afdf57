import { replicaCost } from "../context.js";
import type { Scorer } from "../pipeline.js";

/**
 * Cost of the replica for its expected duration, egress from the data region included, on the scale of the
 * cheapest (100) to the dearest (0) offer that passed the prefilter. The scale comes from the index, not from
 * the candidates visited, so a score means the same whatever the search happened to look at.
 */
function scoreOf(min: number, max: number, cost: number): number {
  if (max <= min) return 100;
  return Math.max(0, Math.min(100, (100 * (max - cost)) / (max - min)));
}

export const costScorer: Scorer = {
  name: "cost",
  score: (ctx, c) => scoreOf(ctx.costRange.min, ctx.costRange.max, c.cost),
  bound: (ctx, bucket, price) => scoreOf(ctx.costRange.min, ctx.costRange.max, replicaCost(ctx, price, bucket.region)),
};
