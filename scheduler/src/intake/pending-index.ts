/**
 * Acknowledged submissions that are only in the intake so far, by job id, so every tenant RPC answers them
 * (GetJob/WatchJob in their state, ListJobs among the written jobs, StreamLogs as a job without logs yet, CancelJob
 * with a cancel intent) instead of NOT_FOUND. Every replica keeps one, fed by its own writes (acks, cancels) and by
 * following both intake streams; an entry goes once the job record is seen (the job repo then answers). Bounded by
 * what is not materialised yet, and capped (`maxEntries`): past the cap the oldest entries are dropped from memory
 * (the submissions stay durable in the intake; only their reads before materialisation are affected).
 *
 * A cancel intent is kept beside its submission and shown applied (`cancelledCopy`, the same transition the
 * written job gets), so every replica answers the job CANCELLED once it has read the intent. An intent for
 * another tenant than the submission's is ignored: a cancel never reaches another tenant's job.
 */
import type { Job } from "@capa/domain";
import { cancelledCopy } from "../jobs/cancel.js";
import type { JobRepo } from "../store/job-repo.js";
import type { CancelIntent, PendingSubmission } from "./envelope.js";

export const DEFAULT_PENDING_INDEX_MAX = 100_000;

export interface PendingEntry {
  submission: PendingSubmission;
  /** The intake stream holding the submission (the first one seen, when a duplicate landed in both). */
  stream: string;
  cancel?: CancelIntent;
  /** The job as the RPCs answer it: its first state, or cancelled once an intent is known. */
  view: Job;
}

export class PendingIndex {
  private readonly entries = new Map<string, PendingEntry>();

  constructor(
    private readonly repo: JobRepo,
    private readonly maxEntries = DEFAULT_PENDING_INDEX_MAX,
  ) {
    repo.onChange((entry) => {
      this.entries.delete(entry.job.id);
    });
  }

  /** Holds the submission unless its record is already known here (or it is held already). */
  add(submission: PendingSubmission, stream: string): void {
    const { job } = submission;
    if (this.repo.summary(job.id) || this.entries.has(job.id)) return;
    this.entries.set(job.id, { submission, stream, view: job });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /**
   * Records a cancel intent on its held submission (the first intent wins, as a repeated CancelJob changes
   * nothing). False when no submission is held for it here, or it names another tenant.
   */
  cancel(intent: CancelIntent): boolean {
    const entry = this.entries.get(intent.jobId);
    if (!entry || entry.submission.job.tenant !== intent.tenant) return false;
    if (entry.cancel) return true;
    entry.cancel = intent;
    entry.view = cancelledCopy(entry.submission.job, intent);
    return true;
  }

  get(jobId: string): Job | undefined {
    return this.entries.get(jobId)?.view;
  }

  entry(jobId: string): PendingEntry | undefined {
    return this.entries.get(jobId);
  }

  /** Every held job, as the RPCs answer it. */
  *jobs(): IterableIterator<Job> {
    for (const e of this.entries.values()) yield e.view;
  }

  remove(jobId: string): void {
    this.entries.delete(jobId);
  }

  get size(): number {
    return this.entries.size;
  }
}
