import { requiredDriver } from "@capa/domain";
import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/** The agent must have the driver the job's tasks need (an image needs the container driver). */
export const driverFilter: Filter = {
  reason: REASON.driverMissing,
  candidate: (ctx, c) => (c.agent.drivers ?? ["process"]).includes(requiredDriver(ctx.spec.template)),
};
