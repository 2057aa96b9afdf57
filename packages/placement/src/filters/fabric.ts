import type { Filter } from "../pipeline.js";
import { REASON } from "../reasons.js";

/**
 * A gang stays inside one fabric (NVLink/InfiniBand) domain unless the job allows spanning: its all-reduce
 * traffic would otherwise cross a slow network. A domain whose agents' free GPUs cannot hold the gang (the
 * index counts whole replica slots per domain) is skipped without looking at its agents.
 */
export const fabricFilter: Filter = {
  reason: REASON.fabricDomainTooSmall,
  domain: (ctx, domain, slotsNeeded) => domain.slots(ctx.gpusPerReplica) >= slotsNeeded,
};
