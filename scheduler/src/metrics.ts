/**
 * Prometheus metrics (own registry per scheduler, so several can run in one process) and the optional endpoint.
 * Labels never carry a tenant, a provider, an API key or a job id: the endpoint is unauthenticated (its own port,
 * bound to loopback unless told otherwise), so it shows the fleet and the money in aggregate only.
 * State gauges (jobs by state, GPUs) are computed at scrape time from what the replica already holds in memory
 * (see observability/); counters and histograms are fed where the event happens.
 */
import type { KvObserver } from "@capa/bus";
import { serveMetrics } from "@capa/metrics";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the state gauges read at scrape time. */
export interface MetricsStateSource {
  /** Jobs held by this replica, by state (every state present, 0 included). */
  jobsByState(): ReadonlyMap<string, number>;
  /** Age in seconds of the oldest pending job (0 when none waits). */
  oldestPendingAgeSeconds(): number;
  /** GPUs of live agents by region and model: all of them, and those neither allocated nor unhealthy. */
  gpus(): Iterable<{ region: string; model: string; total: number; free: number }>;
}

/** Billing totals in micro-dollars by entry kind, region and GPU model (see observability/billing-feed.ts). */
export interface BillingTotalsSource {
  totals(): Iterable<{ kind: "charge" | "fee" | "payout"; region: string; model: string; micros: number }>;
}

export class SchedulerMetrics {
  readonly registry = new Registry();
  readonly jobsSubmitted = new Counter({
    name: "capa_jobs_submitted_total",
    help: "Jobs accepted by SubmitJob (deduplicated retries excluded)",
    registers: [this.registry],
  });
  readonly plans = new Counter({
    name: "capa_plans_total",
    help: "Placement decisions by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly planSeconds = new Histogram({
    name: "capa_plan_seconds",
    help: "Time to plan one evaluation",
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly commitConflicts = new Counter({
    name: "capa_commit_conflicts_total",
    help: "Plans refused at commit (GPUs taken, agent gone) and re-planned",
    registers: [this.registry],
  });
  readonly overCommits = new Counter({
    name: "capa_cluster_overcommit_total",
    help: "Allocations in KV that the cluster state refused (should stay 0)",
    registers: [this.registry],
  });
  readonly statuses = new Counter({
    name: "capa_task_status_total",
    help: "Task status reports by verdict",
    labelNames: ["verdict"] as const,
    registers: [this.registry],
  });
  readonly agentsLost = new Counter({
    name: "capa_agents_lost_total",
    help: "Agents marked lost after missing heartbeats",
    registers: [this.registry],
  });
  readonly evalQueueDepth = new Gauge({
    name: "capa_eval_queue_depth",
    help: "Evaluations waiting",
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "capa_scheduler_leader",
    help: "1 while this replica holds the leader lease",
    registers: [this.registry],
  });
  readonly rpcs = new Counter({
    name: "capa_grpc_requests_total",
    help: "gRPC requests by method and status code",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly regionsHeld = new Gauge({
    name: "capa_regions_held",
    help: "Regions whose agents are all silent and held by the partition grace (not lost, not re-placed)",
    registers: [this.registry],
  });
  readonly forwardedCalls = new Counter({
    name: "capa_grpc_forwarded_total",
    help: "Leader-only calls a follower received, by method and outcome (forwarded, leader-error, not-forwarded)",
    labelNames: ["method", "outcome"] as const,
    registers: [this.registry],
  });
  readonly intakeSubmissions = new Counter({
    name: "capa_intake_submissions_total",
    help: "Submissions acknowledged from an intake stream because the normal path was stuck on the store (written, duplicate, failed)",
    labelNames: ["stream", "outcome"] as const,
    registers: [this.registry],
  });
  readonly intakeMaterialised = new Counter({
    name: "capa_intake_materialised_total",
    help: "Pending submissions completed by the leader's materialiser (created, beside: created although its request id names another job, existed, refused)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly intakeCancels = new Counter({
    name: "capa_intake_cancels_total",
    help: "CancelJob on jobs acknowledged from the intake and not written yet: intents written (written, duplicate, failed) and applied by the materialiser (created-cancelled: the job written cancelled; applied: its record cancelled; unchanged: cancelled already; ignored: another tenant or no such job)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly requestClaims = new Counter({
    name: "capa_request_claims_total",
    help: "Request-id claims (scheduler/src/requests) by outcome (claimed: the submission's own record won; found: the request id had a job already; failed: too few registers answered) and by how many request registers answered with a store error (1 with the others deciding: that register had no Raft leader and was not waited for)",
    labelNames: ["outcome", "registers_failed"] as const,
    registers: [this.registry],
  });
  readonly intakeStepdowns = new Counter({
    name: "capa_intake_leader_stepdowns_total",
    help: "Stream leader step-downs the leader spread asked for because two streams of a group (the intake streams; the request registers) were led by one server, by the stream stepped down",
    labelNames: ["stream"] as const,
    registers: [this.registry],
  });
  readonly usageReports = new Counter({
    name: "capa_usage_reports_total",
    help: "Agent usage reports by verdict (accepted, or the rejection reason)",
    labelNames: ["verdict"] as const,
    registers: [this.registry],
  });
  readonly settlements = new Counter({
    name: "capa_settlements_total",
    help: "Allocation settlements by outcome (settled, already-settled, skipped)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly budgetEvents = new Counter({
    name: "capa_budget_events_total",
    help: "Running-job budget events (warn-80, stop)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly reportsDropped = new Counter({
    name: "capa_agent_reports_dropped_total",
    help: "Task reports dropped because of who sent them (agent-mismatch: payload vs subject; not-held)",
    labelNames: ["kind", "reason"] as const,
    registers: [this.registry],
  });
  readonly advertsRefused = new Counter({
    name: "capa_adverts_refused_total",
    help: "Adverts refused at ingest, by named reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly httpRequests = new Counter({
    name: "capa_http_requests_total",
    help: "HTTP edge requests by route pattern and status code",
    labelNames: ["route", "code"] as const,
    registers: [this.registry],
  });

  readonly grpcSeconds = new Histogram({
    name: "capa_grpc_request_duration_seconds",
    help: "Unary gRPC call latency by method and status code, from admission by the auth guard to the answer",
    labelNames: ["method", "code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly submitToRunning = new Histogram({
    name: "capa_job_submit_to_running_seconds",
    help: "Time from a job's creation to its first running state (observed by the leader only)",
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });

  readonly natsEvents = new Counter({
    name: "capa_nats_connection_events_total",
    help: "NATS connection events by type (disconnect, reconnect, reconnecting, error, staleConnection, ldm)",
    labelNames: ["event"] as const,
    registers: [this.registry],
  });
  readonly kvErrors = new Counter({
    name: "capa_kv_errors_total",
    help: "KV operations that failed for a reason other than a CAS conflict (timeouts, no responders, JS errors)",
    labelNames: ["bucket", "op"] as const,
    registers: [this.registry],
  });
  readonly kvConflicts = new Counter({
    name: "capa_kv_conflicts_total",
    help: "KV CAS writes refused because the key changed (re-read and re-applied by the caller)",
    labelNames: ["bucket"] as const,
    registers: [this.registry],
  });

  private state: MetricsStateSource | undefined;
  private billing: BillingTotalsSource | undefined;

  constructor() {
    const metrics = this;
    new Gauge({
      name: "capa_jobs",
      help: "Jobs known to this replica by state (final jobs stay until the retention sweep)",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [state, n] of metrics.state?.jobsByState() ?? []) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "capa_pending_job_oldest_age_seconds",
      help: "Age of the oldest pending job (0 when none waits)",
      registers: [this.registry],
      collect() {
        this.set(metrics.state?.oldestPendingAgeSeconds() ?? 0);
      },
    });
    const gpuGauge = (name: string, help: string, pick: "total" | "free") =>
      new Gauge({
        name,
        help,
        labelNames: ["region", "gpu_model"] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const g of metrics.state?.gpus() ?? []) this.set({ region: g.region, gpu_model: g.model }, g[pick]);
        },
      });
    gpuGauge("capa_gpus_total", "GPUs of live agents by region and model", "total");
    gpuGauge("capa_gpus_free", "GPUs of live agents neither allocated nor unhealthy, by region and model", "free");
    const billingCounter = (name: string, help: string, kind: "charge" | "fee" | "payout") =>
      new Counter({
        name,
        help,
        labelNames: ["region", "gpu_model"] as const,
        registers: [this.registry],
        collect() {
          // The totals are exact integer micros summed from the ledger; converted to dollars only here.
          this.reset();
          for (const t of metrics.billing?.totals() ?? [])
            if (t.kind === kind) this.inc({ region: t.region, gpu_model: t.model }, t.micros / 1_000_000);
        },
      });
    billingCounter("capa_billing_charged_dollars_total", "Charged to tenants, from the ledger (dollars)", "charge");
    billingCounter("capa_billing_fees_dollars_total", "Platform fees, from the ledger (dollars)", "fee");
    billingCounter("capa_billing_payouts_dollars_total", "Paid out to providers, from the ledger (dollars)", "payout");
  }

  /** Counts one bucket's store failures. */
  kvObserver(bucket: string): KvObserver {
    return {
      error: (op) => this.kvErrors.inc({ bucket, op }),
      conflict: () => this.kvConflicts.inc({ bucket }),
    };
  }

  /** Where the state gauges read from (set once the replica's state is loaded). */
  bindState(state: MetricsStateSource): void {
    this.state = state;
  }

  /** Where the billing counters read from. */
  bindBilling(billing: BillingTotalsSource): void {
    this.billing = billing;
  }

  /** Serves GET /metrics (with Node's default process metrics); resolves with the bound address. */
  serve(host: string, port: number): Promise<{ address: string; close(): Promise<void> }> {
    return serveMetrics(this.registry, host, port);
  }
}
