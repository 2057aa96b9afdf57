/** OperatorService over gRPC: converts, validates at the edge, maps errors. */
import type * as pb from "@capa/api";
import { type Job, NotFoundError, throwIfViolations, ValidationError } from "@capa/domain";
import type { Fleet } from "../agents/fleet.js";
import { jobIdViolations } from "../jobs/job-service.js";
import type { ClusterStateApi, PlacementEngineApi } from "../planner/engine.js";
import type { ExplanationStore } from "../planner/explanations.js";
import { simulate } from "../planner/simulate.js";
import type { PolicyService } from "../policy/policy-service.js";
import { GRPC_REPLAY_FIELDS, type ReplayService } from "../replay/index.js";
import type { JobRepo } from "../store/job-repo.js";
import { agentInfoToPb, explanationToPb, policyToPb } from "./convert.js";
import { advertisedGpuModels, specFromWire } from "./edge.js";
import { compareKeys, pageByKey } from "./paging.js";
import { replayOutputToPb, replayRequestFromPb } from "./replay-convert.js";

/** Largest ListAgents page; without a limit every agent is listed (one page). */
export const MAX_AGENTS_LIMIT = 1000;

import { callerOf } from "./guard.js";
import { requireVisible } from "./scope.js";
import { type EdgeContext, unary } from "./unary.js";

export interface OperatorHandlerDeps extends EdgeContext {
  fleet: Fleet;
  policy: PolicyService;
  explanations: ExplanationStore;
  repo: JobRepo;
  engine: PlacementEngineApi;
  cluster: ClusterStateApi;
  now: () => number;
  onPolicyChanged: () => void;
  replays: ReplayService;
  /** A service replica's job: why it exists (scheduler/src/services); undefined for other jobs. */
  replicaContext?: (job: Job) => Promise<pb.ReplicaContext | undefined>;
}

export function operatorHandlers(d: OperatorHandlerDeps): pb.OperatorServiceServer {
  const known = advertisedGpuModels(d.cluster);
  return {
    listAgents: unary(d, "ListAgents", (req: pb.ListAgentsRequest) => {
      if (req.limit > MAX_AGENTS_LIMIT)
        throw new ValidationError([{ field: "limit", message: `must be at most ${MAX_AGENTS_LIMIT}` }]);
      const page = pageByKey(d.fleet.list(req.region), {
        pageToken: req.pageToken,
        size: req.limit || Number.MAX_SAFE_INTEGER,
        filter: ["agents", req.region],
        key: (a) => [a.record.advert.agentId],
        compare: compareKeys,
      });
      return { agents: page.items.map(agentInfoToPb), nextPageToken: page.nextPageToken };
    }),
    drainAgent: unary(d, "DrainAgent", async (req: pb.DrainAgentRequest) => ({
      agent: agentInfoToPb(await d.fleet.drain(req.agentId, req.drain)),
    })),
    getPolicy: unary(d, "GetPolicy", () => ({ policy: policyToPb(d.policy.get()) })),
    setPolicy: unary(d, "SetPolicy", async (req: pb.SetPolicyRequest) => {
      const view = await d.policy.set({
        profile: req.profile,
        profileDocument: req.profileDocument,
        weights: { ...req.weights },
        actor: req.actor,
      });
      d.onPolicyChanged();
      return { policy: policyToPb(view) };
    }),
    explainJob: unary(d, "ExplainJob", async (req: pb.ExplainJobRequest, call) => {
      throwIfViolations(jobIdViolations(req.jobId));
      const job = requireVisible(callerOf(call), (await d.repo.require(req.jobId)).job);
      const explanation = await d.explanations.get(req.jobId);
      if (!explanation) throw new NotFoundError(`no placement decision recorded for job ${req.jobId} yet`);
      const service = await d.replicaContext?.(job);
      return { explanation: explanationToPb(explanation), service };
    }),
    simulate: unary(d, "Simulate", (req: pb.SimulateRequest) => ({
      explanation: explanationToPb(
        simulate(
          d.engine,
          d.cluster,
          { spec: specFromWire(req.spec, known), profile: req.profile, seed: req.seed },
          d.now(),
        ),
      ),
    })),
    replay: unary(d, "Replay", async (req: pb.ReplayRequest) =>
      replayOutputToPb(await d.replays.run(replayRequestFromPb(req), GRPC_REPLAY_FIELDS)),
    ),
  };
}
