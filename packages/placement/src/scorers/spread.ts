import type { Scorer } from "../pipeline.js";

/**
 * Availability: keep a job's replicas on different providers and agents, so one outage does not take them all.
 * Neutral for gangs, which want the opposite (locality; see the locality scorer).
 */
export const spreadScorer: Scorer = {
  name: "spread",
  score: (ctx, c, peers) => {
    if (ctx.spec.kind === "training" || peers.length === 0) return 100;
    let sameProvider = 0;
    let sameAgent = 0;
    for (const p of peers) {
      if (p.agent.provider === c.agent.provider) sameProvider++;
      if (p.agent.id === c.agent.id) sameAgent++;
    }
    return 100 - (50 * sameProvider) / peers.length - (50 * sameAgent) / peers.length;
  },
};
