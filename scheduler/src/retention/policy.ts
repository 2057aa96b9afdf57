/**
 * Which records retention may remove: jobs that are final and finished longer ago than the retention, with their
 * explanation and request record. Pure (the clock is a parameter). Live state is never chosen: a job that is not
 * final, or final but without a finish time, stays whatever its age.
 */
import { isFinalJobState, type Job } from "@capa/domain";

export const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** True when `job` is final and finished at least `retentionMs` before `nowMs`. */
export function isExpired(job: Pick<Job, "state" | "finishedAtMs">, nowMs: number, retentionMs: number): boolean {
  return isFinalJobState(job.state) && job.finishedAtMs > 0 && job.finishedAtMs + retentionMs <= nowMs;
}

/** The expired jobs among `jobs`, oldest first, at most `limit` (one sweep's work is bounded). */
export function expiredJobs<T extends { job: Pick<Job, "state" | "finishedAtMs"> }>(
  entries: Iterable<T>,
  nowMs: number,
  retentionMs: number,
  limit: number,
): T[] {
  const out: T[] = [];
  for (const e of entries) if (isExpired(e.job, nowMs, retentionMs)) out.push(e);
  return out.sort((a, b) => a.job.finishedAtMs - b.job.finishedAtMs).slice(0, limit);
}
