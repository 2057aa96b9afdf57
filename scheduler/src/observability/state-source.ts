/** The scheduler's state gauges, read at scrape time from the job cache and the cluster state it already holds. */
import { JOB_STATES } from "@capa/domain";
import type { MetricsStateSource } from "../metrics.js";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";

export function stateSource(jobs: JobRepo, cluster: ClusterStateApi, now: () => number): MetricsStateSource {
  return {
    jobsByState() {
      const counts = new Map<string, number>(JOB_STATES.map((s) => [s, 0]));
      for (const job of jobs.allSummaries()) counts.set(job.state, (counts.get(job.state) ?? 0) + 1);
      return counts;
    },
    oldestPendingAgeSeconds() {
      let oldest = Number.POSITIVE_INFINITY;
      for (const job of jobs.allSummaries()) if (job.state === "pending") oldest = Math.min(oldest, job.createdAtMs);
      return Number.isFinite(oldest) ? Math.max(0, now() - oldest) / 1000 : 0;
    },
    gpus() {
      const byKey = new Map<string, { region: string; model: string; total: number; free: number }>();
      for (const agent of cluster.agents()) {
        const free = new Set(cluster.freeGpuIndices(agent.id));
        for (const gpu of agent.gpus) {
          const key = `${agent.region}\u0000${gpu.model}`;
          const row = byKey.get(key) ?? { region: agent.region, model: gpu.model, total: 0, free: 0 };
          byKey.set(key, row);
          row.total++;
          if (gpu.healthy && free.has(gpu.index)) row.free++;
        }
      }
      return byKey.values();
    },
  };
}
