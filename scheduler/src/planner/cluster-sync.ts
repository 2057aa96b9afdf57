/**
 * Keeps the one long-lived ClusterState in step with the assignments: a task listed for an agent holds its GPUs
 * (running or stopping) until it is removed from the list, which happens when its final status is folded or the
 * agent is lost. A listing marked `stop` is `stopping` in the ClusterState: the engine never picks it as a victim
 * and waits for its GPUs instead of preempting again. Driven by AllocRepo changes, so own commits and other
 * replicas' commits update it alike. Checkpoints reported by agents reach the job's tasks (fold) and from there
 * the allocations (`checkpointSync`), where preemption weighs the work a victim would lose.
 */
import { isFinalTaskState, type Job, type TaskAssignment } from "@capa/domain";
import type { Logger } from "pino";
import type { AllocListener } from "../store/alloc-repo.js";
import type { ClusterStateApi } from "./engine.js";

export interface JobFacts {
  priority: number;
  interruptible: boolean;
}

/**
 * Adds an agent's listed assignments the cluster state does not hold yet (the listing was seen before the
 * agent's advert: after a restart, or an agent that was unknown). Call after the agent is upserted.
 */
export function resyncAgent(
  cluster: ClusterStateApi,
  agentId: string,
  listed: TaskAssignment[],
  listener: AllocListener,
): void {
  const missing = listed.filter((t) => cluster.allocation(t.taskId)?.agentId !== agentId);
  if (missing.length > 0) listener(agentId, [], missing);
}

export function clusterSync(
  cluster: ClusterStateApi,
  jobFacts: (jobId: string) => JobFacts | undefined,
  logger: Logger,
  onOverCommit: () => void = () => {},
): AllocListener {
  const same = (a: TaskAssignment, b: TaskAssignment) =>
    a.epoch === b.epoch &&
    a.stop === b.stop &&
    a.gpuIndices.length === b.gpuIndices.length &&
    a.gpuIndices.every((g, i) => g === b.gpuIndices[i]);
  return (agentId, before, after) => {
    const afterById = new Map(after.map((t) => [t.taskId, t]));
    const beforeById = new Map(before.map((t) => [t.taskId, t]));
    // The same allocation only changing its stop mark keeps the checkpoint it reported.
    const checkpoints = new Map<string, number>();
    for (const old of before) {
      const now = afterById.get(old.taskId);
      if (now && same(old, now)) continue;
      const held = cluster.allocation(old.taskId);
      if (held?.agentId !== agentId) continue;
      if (now && now.epoch === old.epoch) checkpoints.set(old.taskId, held.lastCheckpointMs);
      cluster.removeAllocation(old.taskId);
    }
    for (const task of after) {
      const old = beforeById.get(task.taskId);
      if (old && same(old, task) && cluster.allocation(task.taskId)) continue;
      if (!cluster.agent(agentId)) continue; // added by resyncAgent once the agent is known
      const existing = cluster.allocation(task.taskId);
      if (existing) cluster.removeAllocation(task.taskId);
      const facts = jobFacts(task.jobId);
      try {
        cluster.addAllocation({
          taskId: task.taskId,
          jobId: task.jobId,
          agentId,
          gpuIndices: [...task.gpuIndices],
          priority: facts?.priority ?? 0,
          interruptible: facts?.interruptible ?? false,
          pricePerGpuHour: task.pricePerGpuHour,
          startedAtMs: task.assignedAtMs,
          lastCheckpointMs: checkpoints.get(task.taskId) ?? 0,
          ...(task.stop ? { stopping: true } : {}),
        });
      } catch (err) {
        onOverCommit();
        logger.error({ err, agentId, taskId: task.taskId }, "cluster state refused an allocation that KV holds");
      }
    }
  };
}

/**
 * Copies the checkpoint times of a job's tasks onto their allocations in the cluster state, when the allocation
 * is the task's current one (same agent, listed under the task's epoch with the same GPUs). Feed it every job
 * change (and every job once at leader start: checkpoints are not in the assignment listings).
 */
export function checkpointSync(
  cluster: ClusterStateApi,
  listings: (taskId: string) => ReadonlyArray<{ agentId: string; assignment: TaskAssignment }>,
): (job: Job) => void {
  return (job) => {
    for (const t of job.tasks) {
      const checkpoint = t.lastCheckpointMs ?? 0;
      if (checkpoint <= 0 || isFinalTaskState(t.state)) continue;
      const a = cluster.allocation(t.id);
      if (!a || a.agentId !== t.agentId || a.lastCheckpointMs === checkpoint) continue;
      const current = listings(t.id).some(
        (l) =>
          l.agentId === t.agentId &&
          l.assignment.epoch === t.epoch &&
          l.assignment.gpuIndices.length === a.gpuIndices.length &&
          l.assignment.gpuIndices.every((g, i) => g === a.gpuIndices[i]),
      );
      // Re-adding the same task id on the same GPUs replaces it in place (never an over-commit).
      if (current) cluster.addAllocation({ ...a, lastCheckpointMs: checkpoint });
    }
  };
}
