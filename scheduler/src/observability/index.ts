/**
 * Observability wiring: binds the metric sources (state gauges, billing from the ledger) and the event hooks
 * (NATS connection events, submit→running latency) to a scheduler's metrics. One call from scheduler.ts.
 */
import { followNatsStatus, type NatsStatusSource } from "@capa/metrics";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";
import { BillingFeed } from "./billing-feed.js";
import { stateSource } from "./state-source.js";

export { BillingFeed } from "./billing-feed.js";
export { stateSource } from "./state-source.js";

export interface ObserveDeps {
  metrics: SchedulerMetrics;
  nc: NatsStatusSource;
  js: JetStreamClient;
  jobs: JobRepo;
  cluster: ClusterStateApi;
  /** Only the leader observes job transitions, so that replicas' histograms add up to one count per job. */
  isLeader: () => boolean;
  logger: Logger;
  now: () => number;
}

export function observeScheduler(d: ObserveDeps): { stop(): void } {
  d.metrics.bindState(stateSource(d.jobs, d.cluster, d.now));
  followNatsStatus(d.nc, d.metrics.natsEvents);
  const billing = new BillingFeed(d.js, d.logger);
  d.metrics.bindBilling(billing);
  billing.start();
  d.jobs.onChange((entry, previous) => {
    const job = entry.job;
    // First run only: a retried attempt or a re-placed job is not a new submission.
    if (job.state !== "running" || !previous || (job.attempt ?? 1) > 1) return;
    if (previous.job.state !== "pending" && previous.job.state !== "placed") return;
    if (!d.isLeader()) return;
    d.metrics.submitToRunning.observe(Math.max(0, job.updatedAtMs - job.createdAtMs) / 1000);
  });
  return { stop: () => billing.stop() };
}
