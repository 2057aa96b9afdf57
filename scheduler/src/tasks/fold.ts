/**
 * Pure: folds one agent status report into a job. Fencing: a report counts only when it names the agent and
 * the epoch of the task's current allocation; anything else is stale. Task states only move forward, so
 * redelivered or reordered reports change nothing. A report may also carry the task's last checkpoint (a running
 * task re-reports "running" when it checkpoints): kept on the task, clamped to the scheduler's window, forward only.
 */
import { isFinalJobState, isFinalTaskState, type Job, type TaskStatusReport } from "@capa/domain";
import { advances, settle } from "../jobs/settle.js";

export type FoldVerdict = "applied" | "unchanged" | "stale" | "unknown-task";

export interface FoldResult {
  verdict: FoldVerdict;
  /** The new job when `verdict` is "applied". */
  job?: Job;
  /** The report is final: the assignment it names (agent + epoch), if still listed, can be removed. */
  final: boolean;
}

export function foldStatus(job: Job, report: TaskStatusReport, nowMs: number): FoldResult {
  const task = job.tasks.find((t) => t.id === report.taskId);
  const final = isFinalTaskState(report.state);
  if (!task) return { verdict: "unknown-task", final };
  if (report.epoch !== task.epoch || report.agentId !== task.agentId || task.epoch === 0)
    return { verdict: "stale", final };
  if (isFinalTaskState(task.state)) return { verdict: "unchanged", final };
  // A task stopped without the tenant cancelling (gang restart, preemption, agent shutdown) must run again.
  let state = report.state;
  if (state === "cancelled" && !job.cancelRequested && !isFinalJobState(job.state)) state = "preempted";
  const advancing = advances(task.state, state);
  // A checkpoint (running tasks re-report "running" with it) only moves forward, within the scheduler's window.
  const reported = report.lastCheckpointMs ?? 0;
  const started = task.startedAtMs || (report.startedAtMs > 0 ? clamp(report.startedAtMs, task.placedAtMs, nowMs) : 0);
  const checkpoint = reported > 0 && !final ? clamp(reported, started || task.placedAtMs, nowMs) : 0;
  const checkpointed = checkpoint > (task.lastCheckpointMs ?? 0);
  if (!advancing && !checkpointed) return { verdict: "unchanged", final };
  const next = structuredClone(job);
  const t = next.tasks.find((x) => x.id === report.taskId)!;
  if (checkpointed) t.lastCheckpointMs = checkpoint;
  if (!advancing) return { verdict: "applied", job: next, final };
  t.state = state;
  // The billing window is the scheduler's own: an agent's clock may be skewed (or lie), so its timestamps are
  // clamped between the placement commit and the moment this report reached the scheduler.
  if (report.startedAtMs > 0) t.startedAtMs = clamp(report.startedAtMs, t.placedAtMs, nowMs);
  if (final) {
    t.exitCode = report.exitCode;
    t.signal = report.signal;
    const earliestEnd = t.startedAtMs > 0 ? t.startedAtMs : t.placedAtMs;
    t.finishedAtMs = report.finishedAtMs > 0 ? clamp(report.finishedAtMs, earliestEnd, nowMs) : nowMs;
  }
  if (report.message) t.message = report.message.slice(0, 1024);
  settle(next, nowMs);
  return { verdict: "applied", job: next, final };
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), Math.max(low, high));
}
