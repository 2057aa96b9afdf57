/**
 * Pure: the retry policy of a job (`spec.retries: {max, backoffSeconds, on}`). Runs inside settle(), before the
 * task states are folded into the job state, so every writer (status fold, reconcile, agent loss) applies it the
 * same way under the job's lock.
 *
 * - A task of the current attempt that ends in a state listed in `on` (failed, lost, preempted) starts the next
 *   attempt while retries are left: the attempt is recorded (exit code, agent, reason), the failed task goes back
 *   to pending, and a training gang restarts as a whole (every member is re-placed; running members are stopped
 *   by reconcile's gang restart, and their "preempted" endings belong to the old attempt, so they are not counted).
 * - The next placement waits `backoffSeconds × 2^(retry-1)` (capped at 10 minutes): `notBeforeMs` on the tasks.
 * - With no retries left, the triggering task fails the job, with the attempt count in the reason.
 * - When the job ends, its last attempt is recorded too, so `attempts` lists every run.
 * Jobs without a policy (or with max 0) are untouched: lost and preempted tasks are re-placed as before.
 */
import {
  type Attempt,
  isFinalJobState,
  type Job,
  type JobState,
  RETRY_ON,
  type RetryOn,
  resetTaskToPending,
  type Task,
} from "@capa/domain";
import { retryExempt } from "../elastic/membership.js";

export const MAX_BACKOFF_SECONDS = 600;
/** Attempts kept on the job record (oldest dropped first): bounds the record however often a job retries. */
export const MAX_RECORDED_ATTEMPTS = 100;

const RETRYABLE: ReadonlySet<string> = new Set(RETRY_ON);

export interface RetryOutcome {
  /** A reason for the job's final state, when retries ran out. */
  finalReason?: string;
}

/** The attempt number the job is on (1 = the first run). */
export function currentAttempt(job: Pick<Job, "attempt">): number {
  return Math.max(1, job.attempt ?? 1);
}

/** Seconds to wait before retry number `retry` (1-based). */
export function backoffSeconds(baseSeconds: number, retry: number): number {
  if (baseSeconds <= 0) return 0;
  return Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** Math.max(0, retry - 1));
}

/** True when the task ran in the job's current attempt (tasks stopped by the restart belong to the old one). */
function inCurrentAttempt(job: Job, t: Task): boolean {
  return t.placedAtMs > 0 && t.placedAtMs >= (job.attemptStartedAtMs ?? 0);
}

export function applyRetries(job: Job, nowMs: number): RetryOutcome {
  const policy = job.spec.retries;
  if (!policy || policy.max <= 0 || isFinalJobState(job.state) || job.cancelRequested) return {};
  const on = new Set(policy.on);
  const trigger = job.tasks.find(
    (t) => RETRYABLE.has(t.state) && on.has(t.state as RetryOn) && inCurrentAttempt(job, t) && !retryExempt(job, t),
  );
  if (!trigger) return {};
  const attempt = currentAttempt(job);
  const used = attempt - 1;
  const reason = describeEnd(trigger);
  record(job, attemptOf(job, trigger, trigger.state, reason, nowMs));
  if (used >= policy.max) {
    const finalReason = `${reason}; attempt ${attempt} of ${policy.max + 1}, no retries left`;
    if (trigger.state !== "failed") {
      trigger.message = `${trigger.state}: ${trigger.message || "no detail"}; no retries left`;
      trigger.state = "failed";
    }
    return { finalReason };
  }
  const retry = used + 1;
  const notBeforeMs = nowMs + backoffSeconds(policy.backoffSeconds, retry) * 1000;
  job.attempt = attempt + 1;
  job.attemptStartedAtMs = nowMs;
  const restart = job.spec.kind === "training" ? job.tasks : [trigger];
  for (const t of restart) {
    if (t.state === "failed" || t.state === "succeeded") {
      resetTaskToPending(t, `retry ${retry} of ${policy.max} after: ${reason}`);
    }
    t.notBeforeMs = notBeforeMs;
  }
  return {};
}

/** Called by settle() once the job has just become final: records the attempt that ended it. */
export function closeAttempt(job: Job, nowMs: number): void {
  if (!job.spec.retries || job.spec.retries.max <= 0) return;
  const attempt = currentAttempt(job);
  if ((job.attempts ?? []).some((a) => a.number === attempt)) return;
  const ended = job.tasks.find((t) => t.state === "failed") ?? job.tasks[0];
  if (!ended) return;
  const outcome = job.state as JobState;
  const reason = outcome === "succeeded" ? "all tasks succeeded" : describeEnd(ended);
  record(job, attemptOf(job, ended, outcome, reason, nowMs));
}

function attemptOf(job: Job, t: Task, outcome: string, reason: string, nowMs: number): Attempt {
  return {
    number: currentAttempt(job),
    outcome,
    taskId: t.id,
    agentId: t.agentId,
    exitCode: t.exitCode,
    signal: t.signal,
    reason: reason.slice(0, 512),
    startedAtMs: job.attemptStartedAtMs || job.createdAtMs,
    finishedAtMs: t.finishedAtMs || nowMs,
  };
}

function record(job: Job, attempt: Attempt): void {
  const list = [...(job.attempts ?? []), attempt];
  job.attempts = list.slice(-MAX_RECORDED_ATTEMPTS);
}

function describeEnd(t: Task): string {
  if (t.state === "failed") {
    const how = t.signal ? `was killed by ${t.signal}` : `exited with code ${t.exitCode}`;
    // The agent's own message often says the same ("exited with code 3"): only a different one adds anything.
    return `task ${t.id} ${how}${t.message && t.message !== how ? `: ${t.message}` : ""}`;
  }
  return `task ${t.id} ${t.state}${t.message ? `: ${t.message}` : ""}`;
}
