/**
 * Holds a plan's GPUs in the ClusterState from the moment the engine chose them until its commit is decided, so
 * evaluations running concurrently (the worker plans many jobs while their commits are in flight) never pick the
 * same GPUs. A hold is only the planner's bookkeeping: the commit still verifies every GPU against the stored
 * assignments (CAS), so a hold can never cause a double placement, only prevent wasted plans. Once the
 * assignment is written, the ClusterState's allocation is replaced by the listing's (cluster-sync); if the
 * commit is refused or fails, `release` removes what is still only a hold.
 */
import type { Job } from "@capa/domain";
import type { AllocRepo } from "../store/alloc-repo.js";
import type { ClusterStateApi, Plan } from "./engine.js";

export function holdPlan(cluster: ClusterStateApi, job: Job, plan: Plan, nowMs: number): string[] {
  const held: string[] = [];
  for (const p of plan.placements) {
    const task = job.tasks.find((t) => t.replica === p.replica);
    if (!task || cluster.allocation(task.id)) continue;
    try {
      cluster.addAllocation({
        taskId: task.id,
        jobId: job.id,
        agentId: p.agentId,
        gpuIndices: [...p.gpuIndices],
        priority: job.spec.priority,
        interruptible: p.interruptible,
        pricePerGpuHour: p.pricePerGpuHour,
        startedAtMs: nowMs,
        lastCheckpointMs: 0,
      });
      held.push(task.id);
    } catch {
      // The GPU is held already (a listing arrived meanwhile): the commit's verification decides.
    }
  }
  return held;
}

/** Drops the holds that did not become listings (the commit was refused, failed, or listed elsewhere). */
export function releaseHolds(cluster: ClusterStateApi, allocs: AllocRepo, held: string[]): void {
  for (const taskId of held) {
    const a = cluster.allocation(taskId);
    if (!a) continue;
    const listed = allocs
      .listings(taskId)
      .some(
        (l) =>
          l.agentId === a.agentId &&
          l.assignment.gpuIndices.length === a.gpuIndices.length &&
          l.assignment.gpuIndices.every((g, i) => g === a.gpuIndices[i]),
      );
    if (!listed) cluster.removeAllocation(taskId);
  }
}
