/**
 * Acknowledged submissions that are only in the intake so far, by job id, so GetJob/WatchJob answer them (in
 * their first state) instead of NOT_FOUND. Every replica keeps one, fed by its own acks and by following both
 * intake streams; an entry goes once the job record is seen (the job repo then answers). Bounded by what is not
 * materialised yet, and capped (`maxEntries`): past the cap the oldest entries are dropped from memory (the
 * submissions stay durable in the intake; only their reads before materialisation are affected).
 */
import type { Job } from "@capa/domain";
import type { JobRepo } from "../store/job-repo.js";

export const DEFAULT_PENDING_INDEX_MAX = 100_000;

export class PendingIndex {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly repo: JobRepo,
    private readonly maxEntries = DEFAULT_PENDING_INDEX_MAX,
  ) {
    repo.onChange((entry) => {
      this.jobs.delete(entry.job.id);
    });
  }

  /** Holds `job` unless its record is already known here. */
  add(job: Job): void {
    if (this.repo.summary(job.id)) return;
    this.jobs.set(job.id, job);
    if (this.jobs.size > this.maxEntries) this.jobs.delete(this.jobs.keys().next().value!);
  }

  get(jobId: string): Job | undefined {
    return this.jobs.get(jobId);
  }

  remove(jobId: string): void {
    this.jobs.delete(jobId);
  }

  get size(): number {
    return this.jobs.size;
  }
}
