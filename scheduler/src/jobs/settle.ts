/**
 * Pure job bookkeeping shared by every writer: fold task states into the job state, stamp when it finished and
 * why, and close out tasks that can no longer run once the job is final.
 */
import { foldJobState, isFinalJobState, type Job, type Task, type TaskState } from "@capa/domain";
import { noteMembershipLoss } from "../elastic/membership.js";
import { applyRetries, closeAttempt } from "../retries/policy.js";

/** Tasks in these states wait for a (re-)placement. */
export const NEEDS_PLACEMENT: ReadonlySet<TaskState> = new Set(["pending", "lost", "preempted", "rejected"]);
/** Tasks in these states hold GPUs on an agent. */
export const ACTIVE: ReadonlySet<TaskState> = new Set(["assigned", "starting", "running"]);

const RANK: Record<TaskState, number> = {
  pending: 0,
  assigned: 1,
  starting: 2,
  running: 3,
  succeeded: 4,
  failed: 4,
  cancelled: 4,
  rejected: 4,
  lost: 4,
  preempted: 4,
};

/**
 * A task waiting for a placement after it ran (lost, preempted, rejected, or back to pending for a retry: a
 * pending task keeps the epoch of its last run). A training gang with such a member restarts as a whole.
 */
export function awaitsRestart(t: Task): boolean {
  // (Callers pass an elastic gang's members only: its standby tasks are pending with an old epoch.)
  return NEEDS_PLACEMENT.has(t.state) && (t.state !== "pending" || t.epoch > 0);
}

/** True when moving a task from `from` to `to` is progress (reports may be redelivered or reordered). */
export function advances(from: TaskState, to: TaskState): boolean {
  return RANK[to] > RANK[from];
}

/** Re-folds the job state; stamps `finishedAtMs` and a reason when it becomes final. Mutates and returns `job`. */
export function settle(job: Job, nowMs: number): Job {
  const before = job.state;
  // An elastic gang that can shrink does so instead of counting an attempt (elastic/membership.ts).
  noteMembershipLoss(job, nowMs);
  // The retry policy first: a failed task with retries left is back to pending before the fold sees it.
  const retry = applyRetries(job, nowMs);
  const state = foldJobState(job);
  job.state = state;
  if (isFinalJobState(state)) {
    for (const t of job.tasks) {
      if (t.state === "pending") closeTask(t, nowMs);
    }
    if (!isFinalJobState(before)) {
      job.finishedAtMs = nowMs;
      job.reason = retry.finalReason || finalReason(job) || job.reason;
      closeAttempt(job, nowMs);
    }
  } else if ((state === "placed" || state === "running") && (before === "pending" || before === "rescheduling")) {
    job.reason = "";
  }
  if (state === "rescheduling" && before !== "rescheduling") {
    const t = job.tasks.find((x) => x.state === "lost" || x.state === "preempted" || x.state === "rejected");
    if (t) job.reason = `re-placing task ${t.id}: ${t.message || t.state}`;
  }
  return job;
}

function closeTask(t: Task, nowMs: number): void {
  t.state = "cancelled";
  t.message = t.message || "job finished before the task was placed";
  t.finishedAtMs = t.finishedAtMs || nowMs;
}

function finalReason(job: Job): string {
  if (job.state === "failed") {
    const t = job.tasks.find((x) => x.state === "failed");
    if (!t) return "failed";
    const how = t.signal ? `was killed by ${t.signal}` : `exited with code ${t.exitCode}`;
    return `task ${t.id} ${how}${t.message ? `: ${t.message}` : ""}`;
  }
  if (job.state === "succeeded") return "all tasks succeeded";
  return "";
}
