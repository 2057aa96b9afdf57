import type { Scorer } from "../pipeline.js";

/**
 * Best fit: prefer the agent left fullest after this replica, so whole machines stay free for big gangs
 * (fragmentation is what leaves 8-GPU jobs pending on a half-empty cluster).
 */
export const binpackScorer: Scorer = {
  name: "binpack",
  score: (ctx, c) => {
    const total = c.offer.healthyIndices.length;
    if (total === 0 || ctx.gpusPerReplica === 0) return 50;
    const freeAfter = c.freeBefore - ctx.gpusPerReplica;
    return 100 * (1 - freeAfter / total);
  },
};
