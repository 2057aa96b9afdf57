/**
 * Protobuf ↔ domain for what @capa/bus does not cover: agents as the scheduler sees them, explanations and
 * policy. Generated types stay in this folder.
 */
import type * as pb from "@capa/api";
import { gpuToPb, jobStateFromPb, priceToPb } from "@capa/bus";
import type { FieldViolation, JobState } from "@capa/domain";
import type { AgentInfo } from "../agents/fleet.js";
import type { Explanation, Placement } from "../planner/engine.js";
import type { PolicyView } from "../policy/policy-service.js";

export function agentInfoToPb(a: AgentInfo): pb.AgentInfo {
  const ad = a.record.advert;
  return {
    agentId: ad.agentId,
    region: ad.region,
    zone: ad.zone,
    gpus: ad.gpus.map(gpuToPb),
    freeGpuIndices: [...a.freeGpuIndices],
    prices: ad.prices.map(priceToPb),
    labels: { ...ad.labels },
    simulated: ad.simulated,
    status: a.status,
    lastSeenMs: a.lastSeenMs,
    advertAgeMs: ad.sentAtMs > 0 ? Math.max(0, a.nowMs - ad.sentAtMs) : 0,
    fabricDomain: ad.fabricDomain,
    hostname: ad.hostname,
    taskIds: [...a.taskIds],
  };
}

function scoredToPb(p: Placement): pb.ScoredPlacement {
  return {
    replica: p.replica,
    agentId: p.agentId,
    region: p.region,
    gpuModel: p.gpuModel,
    gpuIndices: [...p.gpuIndices],
    priceMicrosPerGpuHour: p.pricePerGpuHour,
    score: p.score,
    scores: { ...p.scores },
  };
}

export function explanationToPb(e: Explanation): pb.Explanation {
  return {
    jobId: e.jobId,
    outcome: e.outcome,
    profile: e.profile,
    candidatesConsidered: e.candidatesConsidered,
    rejections: { ...e.rejections },
    chosen: e.chosen.map(scoredToPb),
    runnerUp: e.runnerUp.map(scoredToPb),
    relaxation: e.relaxation,
    preemptedTaskIds: [...e.preemptedTaskIds],
    summary: [...e.summary],
    decidedAtMs: e.decidedAtMs,
    seed: e.seed,
    estimatedCostMicros: e.estimatedCost,
  };
}

export function policyToPb(p: PolicyView): pb.Policy {
  return {
    profile: p.profile,
    profileJson: p.profileJson,
    availableProfiles: [...p.availableProfiles],
    updatedBy: p.updatedBy,
    updatedAtMs: p.updatedAtMs,
    revision: p.revision,
  };
}

/** Wire job states → domain, naming each unknown value. */
export function statesFromPb(
  states: pb.JobState[],
  field = "states",
): { states: JobState[]; violations: FieldViolation[] } {
  const out: JobState[] = [];
  const violations: FieldViolation[] = [];
  states.forEach((s, i) => {
    const state = jobStateFromPb(s);
    if (state) out.push(state);
    else violations.push({ field: `${field}[${i}]`, message: `unknown job state ${s}` });
  });
  if (states.length > 16) violations.push({ field, message: "must have at most 16 items" });
  return { states: out, violations };
}
