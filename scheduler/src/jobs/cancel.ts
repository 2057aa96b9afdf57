/**
 * What a cancel request does to a job, as one pure transition shared by every writer of it: CancelJob on a
 * written job (a CAS mutate), the intake's index answering an acknowledged job not written yet, and the
 * materialiser writing such a job already cancelled. One function, so the three answer the same job.
 */
import { isFinalJobState, type Job } from "@capa/domain";
import { settle } from "./settle.js";

export const MAX_CANCEL_REASON = 512;

/** The job's reason once cancelled (the reason given, or a default). */
export function cancelReason(reason: string): string {
  return reason ? `cancelled: ${reason}` : "cancelled by request";
}

/**
 * Marks `job` cancel-requested, cancels its tasks still waiting for a placement and re-folds its state (a job
 * none of whose tasks was placed is then CANCELLED). Mutates and returns `job`; undefined (nothing to do) when
 * the job is final or a cancel was requested already, so a repeated cancel changes nothing.
 */
export function requestCancel(job: Job, reason: string, nowMs: number): Job | undefined {
  if (isFinalJobState(job.state) || job.cancelRequested) return undefined;
  job.cancelRequested = true;
  job.reason = cancelReason(reason);
  for (const t of job.tasks)
    if (t.state === "pending") {
      t.state = "cancelled";
      t.message = "cancelled before placement";
      t.finishedAtMs = nowMs;
    }
  return settle(job, nowMs);
}

/**
 * A copy of `job` cancelled at `atMs` (`job` stays as it was): a job not written yet, as it is answered and then
 * written once a cancel was accepted for it.
 */
export function cancelledCopy(job: Job, cancel: { reason: string; atMs: number }): Job {
  const copy = structuredClone(job);
  return requestCancel(copy, cancel.reason, cancel.atMs) ?? copy;
}
