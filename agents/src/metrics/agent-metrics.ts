/**
 * The agent's Prometheus metrics. One `AgentMetrics` may serve several agents of one process (`capa up` runs its
 * simulated agents in-process behind one endpoint), so every series carries `agent_id` and `region`, and the
 * gauges are read at scrape time from each attached agent. GPU telemetry is what the agent advertises: nvidia-smi's
 * last reading on a real host, the simulator's on a simulated one. No task id, tenant or command appears in a label.
 */
import type { Gpu } from "@capa/domain";
import { followNatsStatus, type MetricsServer, type NatsStatusSource, serveMetrics } from "@capa/metrics";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What one agent exposes to its metrics at scrape time. */
export interface AgentMetricsSource {
  agentId: string;
  region: string;
  gpus(): readonly Gpu[];
  runningTasks(): number;
  /** Final reports kept until the scheduler stops listing the task. */
  finishedTasks(): number;
  /** Task messages (status, usage, logs) not yet acknowledged by JetStream. */
  queuedReports(): number;
}

const MIB = 1024 * 1024;

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly sources = new Set<AgentMetricsSource>();

  readonly tasksStarted = new Counter({
    name: "capa_agent_tasks_started_total",
    help: "Tasks this agent started",
    labelNames: ["agent_id", "region"] as const,
    registers: [this.registry],
  });
  readonly tasksFinished = new Counter({
    name: "capa_agent_tasks_finished_total",
    help: "Tasks that ended, by final state (succeeded, failed, cancelled, preempted, rejected, lost)",
    labelNames: ["agent_id", "region", "state"] as const,
    registers: [this.registry],
  });
  readonly reportLag = new Histogram({
    name: "capa_agent_report_lag_seconds",
    help: "From a task report being queued to JetStream acknowledging it, by kind (status, usage, log)",
    labelNames: ["agent_id", "region", "kind"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly publishRetries = new Counter({
    name: "capa_agent_report_publish_failures_total",
    help: "Task report publishes that failed and were retried (NATS down, JetStream timeout)",
    labelNames: ["agent_id", "region", "kind"] as const,
    registers: [this.registry],
  });
  readonly natsEvents = new Counter({
    name: "capa_agent_nats_connection_events_total",
    help: "NATS connection events by type (disconnect, reconnect, reconnecting, error, staleConnection, ldm)",
    labelNames: ["event"] as const,
    registers: [this.registry],
  });

  constructor() {
    const sources = this.sources;
    const perGpu = (name: string, help: string, value: (g: Gpu) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["agent_id", "region", "gpu", "gpu_model"] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const s of sources)
            for (const g of s.gpus())
              this.set({ agent_id: s.agentId, region: s.region, gpu: String(g.index), gpu_model: g.model }, value(g));
        },
      });
    perGpu("capa_agent_gpu_utilization_ratio", "GPU utilisation, 0..1", (g) => g.utilizationPct / 100);
    perGpu("capa_agent_gpu_memory_used_bytes", "GPU memory in use", (g) => g.memoryUsedMib * MIB);
    perGpu("capa_agent_gpu_memory_total_bytes", "GPU memory", (g) => g.vramMib * MIB);
    perGpu("capa_agent_gpu_temperature_celsius", "GPU temperature", (g) => g.temperatureC);
    perGpu("capa_agent_gpu_healthy", "1 when the GPU is healthy, 0 when degraded or failed", (g) =>
      g.health === "ok" ? 1 : 0,
    );
    const perAgent = (name: string, help: string, value: (s: AgentMetricsSource) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["agent_id", "region"] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const s of sources) this.set({ agent_id: s.agentId, region: s.region }, value(s));
        },
      });
    perAgent("capa_agent_tasks_running", "Tasks running now", (s) => s.runningTasks());
    perAgent("capa_agent_tasks_finished_unacknowledged", "Final reports kept until the scheduler lets go", (s) =>
      s.finishedTasks(),
    );
    perAgent("capa_agent_reports_queued", "Task reports waiting for a JetStream acknowledgement", (s) =>
      s.queuedReports(),
    );
  }

  /** Adds an agent's gauges; the returned function removes them (the agent stopped). */
  attach(source: AgentMetricsSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** Counts an agent's NATS connection events until it closes. */
  followConnection(nc: NatsStatusSource): void {
    followNatsStatus(nc, this.natsEvents);
  }

  serve(host: string, port: number): Promise<MetricsServer> {
    return serveMetrics(this.registry, host, port);
  }
}
