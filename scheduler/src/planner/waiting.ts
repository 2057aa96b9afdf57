/**
 * The jobs that wait for GPUs, kept sorted (priority descending, then oldest first, then id) as job changes
 * arrive, so "capacity freed" enqueues them in that order without scanning and sorting every job the scheduler
 * has ever seen (final jobs stay in the job cache). Insertions and removals are binary searches in one array.
 */
import { isFinalJobState, type Job } from "@capa/domain";
import { NEEDS_PLACEMENT } from "../jobs/settle.js";

interface Rank {
  id: string;
  priority: number;
  createdAtMs: number;
}

function before(a: Rank, b: Rank): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs < b.createdAtMs;
  return a.id < b.id;
}

export function isWaiting(job: Job): boolean {
  return !isFinalJobState(job.state) && !job.cancelRequested && job.tasks.some((t) => NEEDS_PLACEMENT.has(t.state));
}

export class WaitingJobs {
  private readonly sorted: Rank[] = [];
  private readonly members = new Map<string, Rank>();

  /** Feed every job change (and every job at load). */
  observe(job: Job): void {
    const known = this.members.get(job.id);
    const waiting = isWaiting(job);
    if (known && (!waiting || known.priority !== job.spec.priority || known.createdAtMs !== job.createdAtMs)) {
      this.sorted.splice(this.indexOf(known), 1);
      this.members.delete(job.id);
    } else if (known) return;
    if (!waiting) return;
    const rank = { id: job.id, priority: job.spec.priority, createdAtMs: job.createdAtMs };
    this.sorted.splice(this.indexOf(rank), 0, rank);
    this.members.set(job.id, rank);
  }

  /** Waiting job ids, highest priority first, oldest first within a priority. */
  ids(): string[] {
    return this.sorted.map((r) => r.id);
  }

  get size(): number {
    return this.sorted.length;
  }

  /** The position of `rank` (or where it belongs). */
  private indexOf(rank: Rank): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(this.sorted[mid]!, rank)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
