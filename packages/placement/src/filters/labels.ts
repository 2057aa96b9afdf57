import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** The job's node selector: every key must be present on the agent with the same value. */
export const labelsFilter: Filter = {
  reason: REASON.labelMismatch,
  candidate: (ctx, c) => {
    for (const key in ctx.spec.nodeSelector) {
      if (c.agent.labels[key] !== ctx.spec.nodeSelector[key]) return false;
    }
    return true;
  },
};
