/**
 * CPU-only replicas (gpusPerReplica = 0): any agent that passes the location, health and label filters; no
 * GPUs, no GPU price. Rare, so a plain scan of agents in id order with the profile's candidate limit.
 */
import { BUCKET_FILTERS, CANDIDATE_FILTERS } from "../filters/registry.js";
import type { Candidate, RequestContext } from "../pipeline.js";
import { reject } from "../pipeline.js";
import type { ClusterState } from "../state/cluster-state.js";
import { fabricKeyOf } from "../state/cluster-state.js";
import { Offer } from "../state/offer-index.js";
import type { ReplicaSearch } from "./replica.js";
import { better, type Scored, scoreCandidate } from "./scoring.js";

export function searchCpuReplica(state: ClusterState, ctx: RequestContext, peers: readonly Candidate[]): ReplicaSearch {
  let best: Scored | undefined;
  let runnerUp: Scored | undefined;
  let considered = 0;
  let feasible = 0;
  const cpuCtx: RequestContext = { ...ctx, acceptedModels: undefined };
  agents: for (const agent of state.agents()) {
    if (feasible >= ctx.profile.maxCandidates) break;
    considered++;
    const key = { model: "", region: agent.region, residency: agent.residency };
    for (const f of BUCKET_FILTERS) {
      if (!f.bucket!(cpuCtx, key)) {
        reject(ctx, f.reason);
        continue agents;
      }
    }
    const offer = new Offer(agent, "", [], 0, 0, undefined, fabricKeyOf(agent));
    const candidate: Candidate = {
      offer,
      agent,
      model: "",
      region: agent.region,
      pricePerGpuHour: 0,
      interruptible: false,
      freeBefore: 0,
      cost: 0,
    };
    for (const f of CANDIDATE_FILTERS) {
      if (!f.candidate!(ctx, candidate)) {
        reject(ctx, f.reason);
        continue agents;
      }
    }
    feasible++;
    const scored = scoreCandidate(ctx, candidate, peers);
    if (better(scored, best)) {
      runnerUp = best;
      best = scored;
    } else if (better(scored, runnerUp)) runnerUp = scored;
  }
  return { best, runnerUp, considered };
}
