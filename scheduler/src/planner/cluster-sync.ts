/**
 * Keeps the one long-lived ClusterState in step with the assignments: a task listed for an agent holds its GPUs
 * (running or stopping) until it is removed from the list, which happens when its final status is folded or the
 * agent is lost. Driven by AllocRepo changes, so own commits and other replicas' commits update it alike.
 */
import type { TaskAssignment } from "@capa/domain";
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
    a.gpuIndices.length === b.gpuIndices.length &&
    a.gpuIndices.every((g, i) => g === b.gpuIndices[i]);
  return (agentId, before, after) => {
    const afterById = new Map(after.map((t) => [t.taskId, t]));
    const beforeById = new Map(before.map((t) => [t.taskId, t]));
    for (const old of before) {
      const now = afterById.get(old.taskId);
      if (now && same(old, now)) continue;
      if (cluster.allocation(old.taskId)?.agentId === agentId) cluster.removeAllocation(old.taskId);
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
          lastCheckpointMs: 0,
        });
      } catch (err) {
        onOverCommit();
        logger.error({ err, agentId, taskId: task.taskId }, "cluster state refused an allocation that KV holds");
      }
    }
  };
}
