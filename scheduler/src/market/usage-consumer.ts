/**
 * Usage reports from agents (`capa.v1.task.<taskId>.usage.<agentId>` on CAPA_TASKS) through one durable pull consumer,
 * leader only. Each report is checked against the task's current allocation (`checkUsageReport`: unknown
 * allocation, stale or future epoch, wrong agent or job, GPU count, outside the observed window) and counted by
 * verdict in `capa_usage_reports_total{verdict}`; an accepted one triggers the job's budget check. Billing never
 * depends on this consumer: settlement reads the task's reports back from the stream when the allocation ends.
 */
import { decode, parseTaskSubject, STREAMS, type Store, subjects } from "@capa/bus";
import { jobIdOfTask, type UsageReport } from "@capa/domain";
import { checkUsageReport } from "@capa/market";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import { ensureDurableConsumer } from "../store/durable-consumer.js";
import type { JobRepo } from "../store/job-repo.js";
import { watchForQuiet } from "../store/quiet-consumer.js";
import { ackAllTrackerFor } from "../tasks/ack-all.js";
import { reportOriginProblem } from "../tasks/report-origin.js";
import { meteredAllocationOf } from "./allocations.js";
import type { BudgetWatch } from "./budget-watch.js";
import type { SeenUsage } from "./seen-usage.js";

export const USAGE_CONSUMER = "capa-scheduler-usage";

export interface UsageDeps {
  store: Store;
  jobs: JobRepo;
  watch: BudgetWatch;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  /** Whether the agent has a listing for the task (a report from an agent that never held it is dropped). */
  listed?: (agentId: string, taskId: string) => boolean;
  /** An accepted report from this agent: it was alive then (a lost agent is billed up to this). */
  heard?: (agentId: string) => void;
  /** Keeps every report delivered, whatever its verdict, for settlement (seen-usage.ts). */
  seen?: SeenUsage;
}

type Messages = Awaited<ReturnType<Awaited<ReturnType<Store["js"]["consumers"]["get"]>>["consume"]>>;

export class UsageConsumer {
  private messages: Messages | undefined;
  private loop: Promise<void> | undefined;
  private active = false;
  private readonly config = {
    durable_name: USAGE_CONSUMER,
    filter_subject: subjects.allTaskUsage,
    // One ack for many reports (tasks/ack-all.ts); a consumer created before keeps "explicit".
    ack_policy: "all",
    // Created once; from then on it resumes where it stopped. History before it existed needs no budget check.
    deliver_policy: "new",
    ack_wait: 30_000_000_000,
    max_ack_pending: 1000,
    max_deliver: -1,
  } as const;

  constructor(private readonly d: UsageDeps) {}

  async start(): Promise<void> {
    try {
      await ensureDurableConsumer(this.d.store, STREAMS.tasks, { ...this.config }, this.d.logger);
    } catch (err) {
      this.d.logger.warn({ err }, "cannot create the usage consumer; the loop retries");
    }
    this.active = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.active = false;
    this.messages?.stop();
    await this.loop?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { js, jsm } = this.d.store;
    while (this.active) {
      try {
        const info = await jsm.consumers
          .info(STREAMS.tasks, USAGE_CONSUMER)
          .catch(() => jsm.consumers.add(STREAMS.tasks, this.config));
        const consumer = await js.consumers.get(STREAMS.tasks, USAGE_CONSUMER);
        const messages = await consumer.consume({ max_messages: 100 });
        this.messages = messages;
        if (!this.active) messages.stop();
        const quiet = watchForQuiet(jsm, STREAMS.tasks, USAGE_CONSUMER, () => messages.stop(), this.d.logger);
        const acks = ackAllTrackerFor(jsm, STREAMS.tasks, info, this.d.logger);
        try {
          for await (const m of messages) {
            quiet.delivered();
            // Handled synchronously: a redelivery of one handled here waits for its batch's ack.
            if (acks && !acks.delivered(m)) continue;
            this.handle(m.subject, m.data);
            if (acks) acks.handled(m);
            else m.ack();
          }
        } finally {
          quiet.stop();
          acks?.stop();
        }
      } catch (err) {
        this.d.logger.warn({ err }, "usage consumer failed; restarting it");
      }
      if (this.active) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Checks one report and returns its verdict ("accepted" or the rejection). */
  handle(subject: string, data: Uint8Array): string {
    const parsed = parseTaskSubject(subject);
    let report: UsageReport;
    try {
      report = decode.usage(data);
    } catch {
      return this.count("malformed", subject);
    }
    if (!parsed || parsed.taskId !== report.taskId) return this.count("malformed", subject);
    // Before any check: settlement meters what the stream holds on the subject, not what was accepted here.
    this.d.seen?.add(parsed.taskId, parsed.agentId, report);
    const job = this.d.jobs.get(jobIdOfTask(report.taskId))?.job;
    const origin = reportOriginProblem(parsed.agentId, report, job, this.d.listed ?? (() => false));
    if (origin) {
      this.d.metrics.reportsDropped.inc({ kind: "usage", reason: origin });
      return this.count(origin, subject);
    }
    const task = job?.tasks.find((t) => t.id === report.taskId);
    const allocation = job && task ? meteredAllocationOf(job, task) : undefined;
    const rejection = checkUsageReport(report, allocation, this.d.now());
    if (rejection) {
      this.d.logger.debug({ taskId: report.taskId, epoch: report.epoch, rejection }, "usage report rejected");
      return this.count(rejection, subject);
    }
    this.d.heard?.(report.agentId);
    // The budget check runs on every accepted report; the running spend is written to the job only for a
    // periodic one. A final report is sent right before the task's final status, and settlement then writes the
    // job's exact spend: persisting the estimate in between was one more job write (and a watch event for every
    // replica) per finished allocation, almost always overwritten within milliseconds.
    void this.d.watch.check(job!.id, !report.final);
    return this.count("accepted", subject);
  }

  private count(verdict: string, _subject: string): string {
    this.d.metrics.usageReports.inc({ verdict });
    return verdict;
  }
}
