/** Prometheus metrics (own registry per scheduler, so several can run in one process) and the optional endpoint. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

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

  /** Serves GET /metrics; resolves with the bound address. */
  async serve(host: string, port: number): Promise<{ address: string; close(): Promise<void> }> {
    const server: Server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const { port: bound } = server.address() as AddressInfo;
    return {
      address: `${host}:${bound}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }
}
