/**
 * The market's view of the scheduler's state: offer sources from the placement engine's ClusterState (the same
 * agents, prices and free GPUs the planner sees), and running allocations with their expected ends for the
 * quote's start estimate. Lost agents are not in the ClusterState, so they offer nothing.
 */
import type { OfferSource, RunningAllocation } from "@capa/market";
import { toOfferSource } from "@capa/market";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";

export function offerSources(cluster: ClusterStateApi): OfferSource[] {
  const out: OfferSource[] = [];
  for (const agent of cluster.agents()) {
    const free = new Set(cluster.freeGpuIndices(agent.id));
    const held = agent.gpus.filter((g) => g.healthy && !free.has(g.index)).map((g) => g.index);
    out.push(toOfferSource(agent, held));
  }
  return out;
}

/** Allocations holding GPUs; expected end = start (or placement) + the job's expected duration, 0 = unknown. */
export function runningAllocations(cluster: ClusterStateApi, jobs: JobRepo): RunningAllocation[] {
  const out: RunningAllocation[] = [];
  for (const a of cluster.allocations()) {
    const job = jobs.get(a.jobId)?.job;
    const seconds = job?.spec.expectedDurationSeconds ?? 0;
    const task = job?.tasks.find((t) => t.id === a.taskId);
    const since = task?.startedAtMs || task?.placedAtMs || a.startedAtMs;
    out.push({
      agentId: a.agentId,
      gpuIndices: [...a.gpuIndices],
      expectedEndMs: seconds > 0 && since > 0 ? since + seconds * 1000 : 0,
    });
  }
  return out;
}
