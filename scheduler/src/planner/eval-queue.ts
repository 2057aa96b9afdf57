/**
 * Evaluations waiting to run, at most one per job (a second request for a queued job merges into it: the
 * planner always reads the job's latest state). FIFO by first request; a delayed entry (retry after a conflict
 * or a rejection) becomes ready at its time. Bounded: past `maxDepth` new jobs are dropped and counted; the
 * periodic sweep of waiting jobs re-enqueues them.
 */
export interface Evaluation {
  jobId: string;
  reason: string;
  notBeforeMs: number;
  attempt: number;
}

export class EvalQueue {
  private readonly queued = new Map<string, Evaluation>();
  private waiter: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  dropped = 0;

  constructor(
    private readonly now: () => number,
    private readonly maxDepth = 100_000,
  ) {}

  get depth(): number {
    return this.queued.size;
  }

  enqueue(jobId: string, reason: string, delayMs = 0, attempt = 0): void {
    const notBeforeMs = this.now() + delayMs;
    const existing = this.queued.get(jobId);
    if (existing) {
      // Merge: the earliest time wins, so a fresh reason is never delayed behind a retry.
      if (notBeforeMs < existing.notBeforeMs) existing.notBeforeMs = notBeforeMs;
      existing.attempt = Math.max(existing.attempt, attempt);
      return;
    }
    if (this.queued.size >= this.maxDepth) {
      this.dropped++;
      return;
    }
    this.queued.set(jobId, { jobId, reason, notBeforeMs, attempt });
    this.wake();
  }

  /** The next ready evaluation, or undefined when none is ready now. */
  take(): Evaluation | undefined {
    const now = this.now();
    for (const e of this.queued.values()) {
      if (e.notBeforeMs <= now) {
        this.queued.delete(e.jobId);
        return e;
      }
    }
    return undefined;
  }

  /** Resolves when something may be ready (an enqueue, or the earliest delayed entry's time). */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      let earliest = Number.POSITIVE_INFINITY;
      for (const e of this.queued.values()) earliest = Math.min(earliest, e.notBeforeMs);
      if (Number.isFinite(earliest)) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.wake(), Math.max(0, earliest - this.now()));
      }
    });
  }

  wake(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  clear(): void {
    this.queued.clear();
    this.wake();
  }
}
