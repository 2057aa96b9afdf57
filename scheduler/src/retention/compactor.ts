/**
 * Retention (leader only): every `intervalMs`, final jobs finished more than `retentionMs` ago are removed from KV
 * `capa_jobs` with compare-and-set on the revision the sweep read (a job that changed since is left for the next
 * sweep), then their explanation (`explain.<id>`) and their request record (in each request register, only while it
 * still names that job), and the job leaves every replica's memory (the KV watch delivers the purge). Nothing that is
 * not final is ever a candidate (retention/policy.ts), so running work and its allocations are never touched; the
 * ledger (charges, receipts) keeps its own retention and is not compacted here. At most `batch` jobs per sweep.
 */
import type { Job } from "@capa/domain";
import type { Logger } from "pino";
import type { LeaderPart } from "../leader/leadership.js";
import type { RequestClaims } from "../requests/claims.js";
import { EXPLAIN_PREFIX } from "../store/buckets.js";
import type { JobRepo, JobSummary } from "../store/job-repo.js";
import { requestKey } from "../util/ids.js";
import { expiredJobs } from "./policy.js";

export interface CompactorDeps {
  jobs: JobRepo;
  claims: RequestClaims;
  now: () => number;
  logger: Logger;
  retentionMs: number;
  intervalMs: number;
  batch?: number;
  /** Called with the number of jobs removed by each sweep (metrics). */
  onCompacted?: (removed: number) => void;
}

const CONCURRENCY = 32;

export class Compactor implements LeaderPart {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly d: CompactorDeps) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.sweep().catch((err) => this.d.logger.warn({ err }, "retention sweep failed"));
    }, this.d.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One sweep; returns how many jobs it removed. Sweeps never overlap. */
  sweep(): Promise<number> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweepOnce(): Promise<number> {
    // Over the summaries: retired jobs are not all held in memory; each candidate is read (memory, else KV) when
    // removed, and removed only at the revision its summary had.
    const summaries = [...this.d.jobs.allSummaries()].map((job) => ({ job }));
    const candidates = expiredJobs(summaries, this.d.now(), this.d.retentionMs, this.d.batch ?? 1000);
    let removed = 0;
    // A few removals in flight at once: a sweep after a long outage may have many jobs to remove.
    for (let i = 0; i < candidates.length; i += CONCURRENCY) {
      const done = await Promise.all(candidates.slice(i, i + CONCURRENCY).map((entry) => this.remove(entry)));
      removed += done.filter(Boolean).length;
    }
    if (removed > 0) this.d.logger.info({ removed, retentionMs: this.d.retentionMs }, "retention removed final jobs");
    this.d.onCompacted?.(removed);
    return removed;
  }

  /** The job (CAS on the revision read), then its explanation and request record. False when it changed since. */
  private async remove({ job: summary }: { job: JobSummary }): Promise<boolean> {
    const job = await this.d.jobs.withLock(summary.id, async (): Promise<Job | undefined> => {
      const current = await this.d.jobs.fetch(summary.id);
      if (current?.revision !== summary.revision) return undefined;
      return (await this.d.jobs.purge(current)) ? current.job : undefined;
    });
    if (!job) return false;
    await this.d.jobs.kv.kv.purge(EXPLAIN_PREFIX + job.id).catch(() => undefined);
    if (job.requestId !== "") {
      await this.d.claims.purge(requestKey(job.tenant, job.requestId), job.id);
    }
    return true;
  }
}
