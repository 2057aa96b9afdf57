/**
 * Per-replica request counters for one report window: requests, errors (5xx answers and proxy failures) and
 * latencies, from which the window's p95 is taken. Bounded: at most `maxSamples` latencies per replica per window
 * (reservoir sampling keeps the percentile honest beyond that).
 */

export interface ReplicaWindow {
  taskId: string;
  requests: number;
  errors: number;
  p95LatencyMs: number;
}

export interface WindowReport {
  windowMs: number;
  requests: number;
  replicas: ReplicaWindow[];
}

/** Nearest-rank p95 of the samples; 0 for none. */
export function p95(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

export class LoadWindow {
  private startedAtMs: number;
  private requests = 0;
  private readonly replicas = new Map<string, { requests: number; errors: number; samples: number[]; seen: number }>();

  constructor(
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
    private readonly maxSamples = 2_000,
  ) {
    this.startedAtMs = now();
  }

  /** A request arrived (whether or not a replica was found for it). */
  arrived(): void {
    this.requests++;
  }

  /** A request to `taskId` ended: its latency, and whether it failed. */
  record(taskId: string, latencyMs: number, failed: boolean): void {
    const r = this.replicas.get(taskId) ?? { requests: 0, errors: 0, samples: [], seen: 0 };
    this.replicas.set(taskId, r);
    r.requests++;
    if (failed) r.errors++;
    r.seen++;
    if (r.samples.length < this.maxSamples) r.samples.push(latencyMs);
    else {
      const slot = Math.floor(this.random() * r.seen);
      if (slot < this.maxSamples) r.samples[slot] = latencyMs;
    }
  }

  /** The window so far, and a fresh one begins. */
  roll(): WindowReport {
    const nowMs = this.now();
    const report: WindowReport = {
      windowMs: Math.max(1, nowMs - this.startedAtMs),
      requests: this.requests,
      replicas: [...this.replicas.entries()].map(([taskId, r]) => ({
        taskId,
        requests: r.requests,
        errors: r.errors,
        p95LatencyMs: Math.round(p95(r.samples)),
      })),
    };
    this.startedAtMs = nowMs;
    this.requests = 0;
    this.replicas.clear();
    return report;
  }
}
