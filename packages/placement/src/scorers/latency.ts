import type { RequestContext, Scorer } from "../pipeline.js";

/** RTT at which the latency score reaches 0: beyond it a region is as bad as any other for serving users. */
export const RTT_SCALE_MS = 250;

function latencyScore(ctx: RequestContext, region: string): number {
  const targets = ctx.latencyTargets;
  if (targets.length === 0) return 100;
  let weighted = 0;
  let total = 0;
  for (const t of targets) {
    weighted += t.weight * ctx.tables.rttMs(region, t.region);
    total += t.weight;
  }
  const rtt = total > 0 ? weighted / total : 0;
  return Math.max(0, 100 * (1 - rtt / RTT_SCALE_MS));
}

/** Demand-weighted round trip from the candidate's region to the users it serves (inference), else neutral. */
export const latencyScorer: Scorer = {
  name: "latency",
  score: (ctx, c) => latencyScore(ctx, c.region),
  bound: (ctx, bucket) => latencyScore(ctx, bucket.region),
};
