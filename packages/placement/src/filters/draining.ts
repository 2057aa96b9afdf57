import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** The operator is emptying this agent: nothing new lands on it. */
export const drainingFilter: Filter = {
  reason: REASON.agentDraining,
  candidate: (_ctx, c) => !c.agent.draining,
};
