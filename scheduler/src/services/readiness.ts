/**
 * Readiness of service replicas as their agents report it (`capa.v1.task.<taskId>.ready`). Agents re-send every
 * probe period, so a report is trusted only for `period × (failures + 1)`: a replica whose agent died drops out
 * of the endpoint set within its readiness period, before the agent is even declared lost. Whether the report
 * names the task's current allocation (agent + epoch) is the controller's check, against the job.
 */
import * as pb from "@capa/api";
import { type NatsConnection, subjects } from "@capa/bus";
import type { Logger } from "pino";

export interface ReadinessReport {
  taskId: string;
  jobId: string;
  agentId: string;
  epoch: number;
  ready: boolean;
  host: string;
  port: number;
  periodMs: number;
  message: string;
  /** The replica's latest model metrics (CAPA_METRICS lines), at most 32. */
  metrics: Record<string, number>;
  receivedAtMs: number;
}

/** Reports kept at most: one per replica; beyond it the oldest are dropped (a flood cannot grow memory). */
const MAX_TRACKED = 10_000;
const MIN_TRUST_MS = 1_500;

export class ReadinessTracker {
  private readonly reports = new Map<string, ReadinessReport>();

  constructor(
    private readonly now: () => number,
    private readonly failures: (taskId: string) => number = () => 2,
  ) {}

  observe(r: Omit<ReadinessReport, "receivedAtMs">): void {
    this.reports.delete(r.taskId);
    this.reports.set(r.taskId, { ...r, receivedAtMs: this.now() });
    if (this.reports.size > MAX_TRACKED) this.reports.delete(this.reports.keys().next().value as string);
  }

  /** The latest report while it is fresh; undefined once its agent went quiet. */
  get(taskId: string): ReadinessReport | undefined {
    const r = this.reports.get(taskId);
    if (!r) return undefined;
    const trust = Math.max(MIN_TRUST_MS, r.periodMs * (this.failures(taskId) + 1));
    return this.now() - r.receivedAtMs <= trust ? r : undefined;
  }

  forget(taskId: string): void {
    this.reports.delete(taskId);
  }
}

/** Subscribes to every replica's readiness reports; undecodable ones are logged and dropped. */
export function listenToReadiness(nc: NatsConnection, tracker: ReadinessTracker, logger: Logger): () => void {
  const sub = nc.subscribe(subjects.allTaskReady, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const m = pb.TaskReadiness.decode(msg.data);
        // The subject names the task and the reporting agent (only that agent's NATS user may publish it): a report
        // for another task, or naming another agent, than its subject's is refused.
        if (msg.subject !== subjects.taskReady(m.taskId, m.agentId))
          throw new Error("subject does not match the task and agent id");
        tracker.observe({
          taskId: m.taskId,
          jobId: m.jobId,
          agentId: m.agentId,
          epoch: m.epoch,
          ready: m.ready,
          host: m.host,
          port: m.port,
          periodMs: m.periodMs,
          message: m.message.slice(0, 512),
          metrics: Object.fromEntries(
            Object.entries(m.metrics)
              .filter(([k, v]) => /^[a-z_][a-z0-9_]{0,63}$/.test(k) && Number.isFinite(v))
              .slice(0, 32),
          ),
        });
      } catch (e) {
        logger.warn({ err: e, subject: msg.subject }, "dropping an undecodable readiness report");
      }
    },
  });
  return () => sub.unsubscribe();
}
