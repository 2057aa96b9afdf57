/**
 * Task status from agents (JetStream CAPA_TASKS, `capa.v1.task.*.status.*`) through one durable pull consumer,
 * so a restarted scheduler resumes where it stopped. Each report is folded into its job under the job's lock;
 * the message is acked only after the job write is durable. A final report for the task's current allocation
 * then removes the assignment (CAS), which releases the GPUs in the cluster state; the agent re-publishes a
 * final status while the task is still listed, so a crash between the two steps heals itself.
 */
import { decode, parseTaskSubject, STREAMS, type Store, subjects } from "@capa/bus";
import { jobIdOfTask, type TaskStatusReport } from "@capa/domain";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import type { PlanApplier } from "../planner/apply.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import { ensureDurableConsumer } from "../store/durable-consumer.js";
import type { JobRepo } from "../store/job-repo.js";
import { foldStatus } from "./fold.js";
import { reportOriginProblem } from "./report-origin.js";

export const STATUS_CONSUMER = "capa-scheduler-status";

export interface StatusDeps {
  store: Store;
  jobs: JobRepo;
  allocs: AllocRepo;
  applier: PlanApplier;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  /** The job needs an evaluation; `backoff` after a rejected assignment (do not hammer the same agent). */
  evaluate: (jobId: string, reason: string, backoff: boolean) => void;
  /** GPUs were released. */
  capacityFreed: () => void;
  /** An accepted report from this agent: it was alive then (a lost agent is billed up to this). */
  heard?: (agentId: string) => void;
}

type Messages = Awaited<ReturnType<Awaited<ReturnType<Store["js"]["consumers"]["get"]>>["consume"]>>;

export class StatusConsumer {
  private messages: Messages | undefined;
  private loop: Promise<void> | undefined;

  private active = false;
  /** Bumped by every stop: a start that was still setting up when a stop came does not begin consuming. */
  private generation = 0;
  private readonly config = {
    durable_name: STATUS_CONSUMER,
    filter_subject: subjects.allTaskStatus,
    ack_policy: "explicit",
    deliver_policy: "all",
    ack_wait: 30_000_000_000,
    max_ack_pending: 1000,
    max_deliver: -1,
  } as const;

  constructor(private readonly d: StatusDeps) {}

  /**
   * Creates the durable consumer (idempotent) and starts consuming; it resumes where the last leader stopped.
   * Idempotent: while a loop runs, a second start does nothing; a stop during the setup wins (nothing starts).
   */
  async start(): Promise<void> {
    if (this.active) return;
    const generation = this.generation;
    try {
      await ensureDurableConsumer(this.d.store, STREAMS.tasks, { ...this.config }, this.d.logger);
    } catch (err) {
      this.d.logger.warn({ err }, "cannot create the status consumer; the loop retries");
    }
    if (this.active || generation !== this.generation) return;
    this.active = true;
    this.loop = this.run(generation);
  }

  /** Consumes until stopped; if the subscription ends on its own (server restart, consumer gone), starts over. */
  private async run(generation: number): Promise<void> {
    const { js, jsm } = this.d.store;
    const live = () => this.active && generation === this.generation;
    while (live()) {
      try {
        await jsm.consumers
          .info(STREAMS.tasks, STATUS_CONSUMER)
          .catch(() => jsm.consumers.add(STREAMS.tasks, this.config));
        const consumer = await js.consumers.get(STREAMS.tasks, STATUS_CONSUMER);
        const messages = await consumer.consume({ max_messages: 100 });
        // A stop while subscribing: this loop is over (and must not hide a newer loop's subscription from stop).
        if (live()) this.messages = messages;
        else messages.stop();
        for await (const m of messages) {
          try {
            await this.handle(m.subject, m.data);
            m.ack();
          } catch (err) {
            this.d.logger.warn({ err, subject: m.subject }, "task status not applied; will be redelivered");
            m.nak(500);
          }
        }
      } catch (err) {
        this.d.logger.warn({ err }, "status consumer failed; restarting it");
      }
      if (live()) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async stop(): Promise<void> {
    this.active = false;
    this.generation++;
    this.messages?.stop();
    await this.loop?.catch(() => undefined);
  }

  /** Folds one report. Throws only when the store is unavailable (the message is then redelivered). */
  async handle(subject: string, data: Uint8Array): Promise<void> {
    const parsed = parseTaskSubject(subject);
    let report: TaskStatusReport;
    try {
      report = decode.status(data);
    } catch {
      this.d.metrics.statuses.inc({ verdict: "malformed" });
      return;
    }
    if (!parsed || report.taskId !== parsed.taskId) {
      this.d.metrics.statuses.inc({ verdict: "malformed" });
      return;
    }
    const jobId = jobIdOfTask(report.taskId);
    if (report.jobId && report.jobId !== jobId) {
      this.d.metrics.statuses.inc({ verdict: "malformed" });
      return;
    }
    const origin = reportOriginProblem(parsed.agentId, report, this.d.jobs.get(jobId)?.job, (agent, task) =>
      this.d.allocs.isListed(agent, task),
    );
    if (origin) {
      this.d.logger.warn({ subject, agentId: report.agentId, taskId: report.taskId, origin }, "dropping task status");
      this.d.metrics.reportsDropped.inc({ kind: "status", reason: origin });
      this.d.metrics.statuses.inc({ verdict: origin });
      return;
    }
    let verdict = "unknown-job";
    let final = false;
    let stateChanged = false;
    await this.d.jobs.withLock(jobId, async () => {
      const before = await this.d.jobs.fetch(jobId);
      if (!before) return;
      const after = await this.d.jobs.mutateLocked(jobId, (job) => {
        const r = foldStatus(job, report, this.d.now());
        verdict = r.verdict;
        final = r.final;
        return r.job;
      });
      // A checkpoint-only report rewrites the job but changes no state: nothing to re-evaluate.
      stateChanged =
        after !== undefined &&
        after.revision !== before.revision &&
        (after.job.state !== before.job.state ||
          after.job.tasks.some((t, i) => t.state !== before.job.tasks[i]?.state));
      if (final) {
        const freed = await this.d.applier.changeListings(
          [],
          [{ agentId: report.agentId, taskId: report.taskId, epoch: report.epoch }],
        );
        if (freed) this.d.capacityFreed();
      }
      // Re-place lost/rejected tasks, stop the siblings of a failed task, clean up a finished job's listings.
      if (stateChanged) this.d.evaluate(jobId, `task ${report.taskId} ${report.state}`, report.state === "rejected");
    });
    if (verdict !== "unknown-job") this.d.heard?.(report.agentId);
    this.d.metrics.statuses.inc({ verdict });
  }
}
