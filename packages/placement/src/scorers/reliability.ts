import type { Scorer } from "../pipeline.js";

/** The agent's track record (1 = never lost a task): fewer restarts from checkpoints, less wasted GPU time. */
export const reliabilityScorer: Scorer = {
  name: "reliability",
  score: (_ctx, c) => 100 * Math.max(0, Math.min(1, c.agent.reliability)),
};
