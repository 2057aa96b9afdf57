import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** An agent not heard from within the advert age limit may be gone: placing there would strand the task. */
export const freshnessFilter: Filter = {
  reason: REASON.staleAdvert,
  candidate: (ctx, c) => ctx.nowMs - c.agent.lastSeenMs <= ctx.maxAdvertAgeMs,
};
