/**
 * The market's view of the scheduler's state: offer sources from the placement engine's ClusterState (the same
 * agents, prices and free GPUs the planner sees), and, for the quote's start estimate, running allocations with
 * their expected ends and the jobs waiting for GPUs. Lost agents are not in the ClusterState, so they offer
 * nothing. Everything here only reads.
 */
import { isFinalJobState } from "@capa/domain";
import type { OfferSource, PendingJob, RunningAllocation } from "@capa/market";
import { toOfferSource } from "@capa/market";
import type { AgentView } from "@capa/placement";
import { NEEDS_PLACEMENT } from "../jobs/settle.js";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";

/**
 * The offer sources of every agent the cluster knows. Built per agent and kept until the agent's version changes
 * (`ClusterState.agentVersion`: a new advert or heartbeat, a drain, an allocation added or removed on it), so a
 * quote on every submit costs one lookup per agent instead of rebuilding each agent's GPU list; an agent that left
 * is forgotten. The sources are shared between calls: the market only reads them.
 */
export function offerSources(cluster: ClusterStateApi): OfferSource[] {
  let cache = sourceCaches.get(cluster);
  if (!cache) {
    cache = new Map();
    sourceCaches.set(cluster, cache);
  }
  const out: OfferSource[] = [];
  for (const agent of cluster.agents()) {
    const version = cluster.agentVersion(agent.id) ?? -1;
    let kept = cache.get(agent.id);
    if (kept?.version !== version) {
      kept = { version, source: buildOfferSource(cluster, agent) };
      cache.set(agent.id, kept);
    }
    out.push(kept.source);
  }
  if (cache.size > out.length) for (const id of cache.keys()) if (!cluster.agent(id)) cache.delete(id);
  return out;
}

/** One cache per cluster state (weak: a discarded state takes its cache with it). */
const sourceCaches = new WeakMap<ClusterStateApi, Map<string, { version: number; source: OfferSource }>>();

function buildOfferSource(cluster: ClusterStateApi, agent: AgentView): OfferSource {
  const free = new Set(cluster.freeGpuIndices(agent.id));
  const held = agent.gpus.filter((g) => g.healthy && !free.has(g.index)).map((g) => g.index);
  return toOfferSource(agent, held);
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

/**
 * Jobs waiting for GPUs (pending or rescheduling: some task needs a placement; not final, not being cancelled),
 * with the replicas still to place. A training gang re-places all its replicas, so it waits for all of them.
 * The quote decides which are ahead of the quoted job (priority, then age).
 */
export function pendingJobs(jobs: JobRepo): PendingJob[] {
  const out: PendingJob[] = [];
  for (const { job } of jobs.listActive()) {
    if (isFinalJobState(job.state) || job.cancelRequested) continue;
    const waiting = job.tasks.filter((t) => NEEDS_PLACEMENT.has(t.state)).length;
    if (waiting === 0) continue;
    const gang = job.spec.kind === "training" && job.spec.replicas > 1;
    out.push({
      jobId: job.id,
      spec: job.spec,
      replicas: gang ? job.spec.replicas : waiting,
      createdAtMs: job.createdAtMs,
    });
  }
  return out;
}
