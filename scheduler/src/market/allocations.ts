/**
 * A task's allocation (task + epoch) as metering sees it. The window is the scheduler's own record of the task:
 * `startedAtMs` from the RUNNING status it accepted (fenced by agent and epoch, clamped to no earlier than the
 * placement commit), `finishedAtMs` from the final status it folded (clamped to no later than it received it), or
 * its own clock when it marked the task lost or stopped it. The price is the one locked at
 * placement (`Task.pricePerGpuHour`), never the agent's current advert.
 */
import { costForGpuMillis, isFinalTaskState, type Job, type Micros, type Task } from "@capa/domain";
import type { FinishedAllocation } from "@capa/ledger";
import type { MeteredAllocation } from "@capa/market";

export const allocKey = (taskId: string, epoch: number) => `${taskId}:${epoch}`;

/** True for a task that was placed (has an allocation) and has ended: it is settled once. */
export function isSettleable(task: Task): boolean {
  return task.epoch > 0 && task.agentId !== "" && isFinalTaskState(task.state);
}

/** True for a task whose allocation has not ended yet (placed, starting, running or being stopped). */
export function holdsAllocation(task: Task): boolean {
  return task.epoch > 0 && task.agentId !== "" && task.state !== "pending" && !isFinalTaskState(task.state);
}

export function meteredAllocationOf(job: Job, task: Task): MeteredAllocation | undefined {
  if (task.epoch <= 0 || task.agentId === "") return undefined;
  return {
    taskId: task.id,
    jobId: job.id,
    agentId: task.agentId,
    epoch: task.epoch,
    gpus: task.gpuIndices.length,
    pricePerGpuHour: task.pricePerGpuHour,
    placedAtMs: task.placedAtMs,
    startedAtMs: task.startedAtMs,
    observedEndMs: isFinalTaskState(task.state) ? task.finishedAtMs || task.placedAtMs : 0,
  };
}

/** Why the allocation ended, as the ledger records it. */
export function endReasonOf(job: Job, task: Task): string {
  if (task.state === "cancelled" && job.reason.includes(BUDGET_EXHAUSTED)) return BUDGET_EXHAUSTED;
  return task.state;
}

export const BUDGET_EXHAUSTED = "budget-exhausted";

export function finishedAllocationOf(job: Job, task: Task, provider: string): FinishedAllocation | undefined {
  const metered = meteredAllocationOf(job, task);
  if (!metered || !isFinalTaskState(task.state)) return undefined;
  return {
    ...metered,
    tenant: job.tenant,
    provider,
    region: task.region,
    gpuModel: task.gpuModel,
    gpuIndices: [...task.gpuIndices],
    interruptible: task.interruptible,
    endReason: endReasonOf(job, task),
  };
}

/** Cost so far of a task that holds GPUs and runs: locked price × GPUs × (now − start), rounded once. */
export function runningCost(task: Task, nowMs: number): Micros {
  if (isFinalTaskState(task.state) || task.startedAtMs <= 0) return 0;
  return costForGpuMillis(task.pricePerGpuHour, task.gpuIndices.length * Math.max(0, nowMs - task.startedAtMs));
}

/** What the job's running tasks cost per hour together, at their locked prices. */
export function runningHourly(job: Job): Micros {
  let hourly = 0;
  for (const t of job.tasks)
    if (!isFinalTaskState(t.state) && t.epoch > 0) hourly += t.pricePerGpuHour * t.gpuIndices.length;
  return hourly;
}
