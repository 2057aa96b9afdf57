/**
 * Task status from agents (JetStream CAPA_TASKS, `capa.v1.task.*.status.*`) through one durable pull consumer,
 * so a restarted scheduler resumes where it stopped. Each report is folded into its job under the job's lock;
 * the message is acked only after the job write is durable (many at once with one ack of the highest handled
 * sequence, `ack-all.ts`). A final report for the task's current allocation
 * then removes the assignment (CAS), which releases the GPUs in the cluster state; the agent re-publishes a
 * final status while the task is still listed, so a crash between the two steps heals itself.
 *
 * A task's `starting` report (the agent took the assignment and prepares the task) waits up to `coalesceMs` for
 * the task's next report before it is folded, and any other report of the job ends the wait at once: both are
 * then folded into ONE job write instead of two. `starting` changes no job state (a job with a task assigned or
 * starting is placed either way), so every job state is still written and watched (PENDING → PLACED → RUNNING →
 * ...); only the task's own STARTING shows up to `coalesceMs` late, or not at all when the task is running by then.
 * Nothing is acked before its write, and the report is durable in the stream meanwhile (a crash redelivers it).
 * Running and final reports are never held: RUNNING must be visible while the task runs, and a final report
 * frees GPUs.
 */
import { decode, parseTaskSubject, STREAMS, type Store, subjects } from "@capa/bus";
import { isFinalJobState, isFinalTaskState, type Job, jobIdOfTask, type TaskStatusReport } from "@capa/domain";
import type { Logger } from "pino";
import { ACTIVE } from "../jobs/settle.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { PlanApplier } from "../planner/apply.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import { ensureDurableConsumer } from "../store/durable-consumer.js";
import { isRetired, type JobRepo } from "../store/job-repo.js";
import { watchForQuiet } from "../store/quiet-consumer.js";
import { ackAllTrackerFor } from "./ack-all.js";
import { foldStatus } from "./fold.js";
import { reportOriginProblem } from "./report-origin.js";

export const STATUS_CONSUMER = "capa-scheduler-status";
/** Reports being folded at once (at most `max_ack_pending` are delivered unacknowledged anyway). */
const MAX_CONCURRENT_REPORTS = 128;
/**
 * Default of `StatusDeps.coalesceMs`: above the time an agent takes from `starting` to `running` for a plain
 * process (its supervisor's start; 0.4 s at the median, 0.7 s at p90 on a loaded 2-core machine).
 */
export const DEFAULT_STATUS_COALESCE_MS = 1_000;

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
  /**
   * Longest wait of a `starting` report for the job's next report, so both are folded into one write (any other
   * report is folded as soon as the job's lock is free). 0 = no wait. Default 1 s.
   */
  coalesceMs?: number;
}

type Messages = Awaited<ReturnType<Awaited<ReturnType<Store["js"]["consumers"]["get"]>>["consume"]>>;

interface QueuedReport {
  report: TaskStatusReport;
  /** When this scheduler received it: the upper bound of the times it may claim (fold.ts clamps to it). */
  receivedAtMs: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface JobQueue {
  reports: QueuedReport[];
  /** Set while the batch (only `starting` reports) waits for more; cleared when the lock is asked for. */
  timer?: NodeJS.Timeout;
  /** Reports queued while the timer was set: waiting, not being folded (not counted as in flight). */
  waiting: number;
}

export class StatusConsumer {
  private messages: Messages | undefined;
  /** Reports waiting for their job's lock, by job: folded together when it is taken. */
  private readonly pending = new Map<string, JobQueue>();
  /** Reports held by a `starting` batch's wait: they take no folding slot (MAX_CONCURRENT_REPORTS). */
  private waiting = 0;
  private loop: Promise<void> | undefined;

  private active = false;
  /** Bumped by every stop: a start that was still setting up when a stop came does not begin consuming. */
  private generation = 0;
  private readonly config = {
    durable_name: STATUS_CONSUMER,
    filter_subject: subjects.allTaskStatus,
    // One ack for a batch of folded reports (ack-all.ts); a consumer created before keeps "explicit".
    ack_policy: "all",
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
        const info = await jsm.consumers
          .info(STREAMS.tasks, STATUS_CONSUMER)
          .catch(() => jsm.consumers.add(STREAMS.tasks, this.config));
        const consumer = await js.consumers.get(STREAMS.tasks, STATUS_CONSUMER);
        const messages = await consumer.consume({ max_messages: 100 });
        // A stop while subscribing: this loop is over (and must not hide a newer loop's subscription from stop).
        if (live()) this.messages = messages;
        else messages.stop();
        // Reports of different jobs are folded concurrently (their job writes and listing removals overlap, the
        // removals group-committed per agent); reports of one job keep their order, since `handle` takes the
        // job's lock (FIFO) before its first await. Each is acked only once applied.
        const inFlight = new Set<Promise<void>>();
        const quiet = watchForQuiet(jsm, STREAMS.tasks, STATUS_CONSUMER, () => messages.stop(), this.d.logger);
        const acks = ackAllTrackerFor(jsm, STREAMS.tasks, info, this.d.logger);
        try {
          for await (const m of messages) {
            quiet.delivered();
            // A redelivery of a report already folded here (or being folded) waits for its batch's ack.
            if (acks && !acks.delivered(m)) continue;
            const applied = this.handle(m.subject, m.data)
              .then(
                () => (acks ? acks.handled(m) : m.ack()),
                (err) => {
                  this.d.logger.warn({ err, subject: m.subject }, "task status not applied; will be redelivered");
                  if (acks) acks.failed(m, 500);
                  else m.nak(500);
                },
              )
              .finally(() => inFlight.delete(applied));
            inFlight.add(applied);
            while (inFlight.size - this.waiting >= MAX_CONCURRENT_REPORTS) await Promise.race(inFlight);
          }
        } finally {
          quiet.stop();
          await Promise.allSettled(inFlight);
          acks?.stop();
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

  /**
   * Folds one report (with the others of its job queued meanwhile). Resolves once its job write and listing
   * removal are durable; throws only when the store is unavailable (the message is then redelivered).
   */
  async handle(subject: string, data: Uint8Array): Promise<void> {
    const receivedAtMs = this.d.now();
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
    // Memory, else KV (a late report of a retired job out of the cache is checked like any other).
    const known = this.d.jobs.get(jobId) ?? (this.d.jobs.summary(jobId) ? await this.d.jobs.fetch(jobId) : undefined);
    const listed = (agent: string, task: string) => this.d.allocs.isListed(agent, task);
    let origin = reportOriginProblem(parsed.agentId, report, known?.job, listed);
    let holder = known?.job;
    if (origin === "not-held") {
      // The planner writes an agent's assignment before the job record, both under the job's lock: a report from
      // an agent that saw its assignment can be read in between (seen under load: "starting" reports of tasks the
      // job still had pending). Checked again once the lock is free, when that commit has finished; a report
      // from an agent that holds nothing is still dropped.
      holder = await this.d.jobs.withLock(jobId, async () => (await this.d.jobs.fetch(jobId))?.job);
      origin = reportOriginProblem(parsed.agentId, report, holder, listed);
    }
    if (origin) {
      const task = holder?.tasks.find((t) => t.id === report.taskId);
      this.d.logger.warn(
        {
          subject,
          agentId: report.agentId,
          taskId: report.taskId,
          origin,
          state: report.state,
          epoch: report.epoch,
          holder: task && { agentId: task.agentId, epoch: task.epoch, state: task.state },
        },
        "dropping task status",
      );
      this.d.metrics.reportsDropped.inc({ kind: "status", reason: origin });
      this.d.metrics.statuses.inc({ verdict: origin });
      return;
    }
    // Reports of one job that queue up while its lock is held, or while a `starting` batch waits for the next
    // report, are folded together: one job write for all.
    const holds = report.state === "starting";
    return new Promise<void>((resolve, reject) => {
      let queue = this.pending.get(jobId);
      if (!queue) {
        queue = { reports: [], waiting: 0 };
        this.pending.set(jobId, queue);
        const wait = this.d.coalesceMs ?? DEFAULT_STATUS_COALESCE_MS;
        if (holds && wait > 0) {
          const q = queue;
          q.timer = setTimeout(() => this.fold(jobId, q), wait);
        } else this.fold(jobId, queue);
      } else if (!holds && queue.timer) {
        this.fold(jobId, queue);
      }
      queue.reports.push({ report, receivedAtMs, resolve, reject });
      if (queue.timer) {
        queue.waiting++;
        this.waiting++;
      }
    });
  }

  /** Asks for the job's lock to fold its queued reports (and those that join until it is taken). */
  private fold(jobId: string, queue: JobQueue): void {
    clearTimeout(queue.timer);
    queue.timer = undefined;
    this.waiting -= queue.waiting;
    queue.waiting = 0;
    void this.d.jobs.withLock(jobId, () => this.foldQueued(jobId));
  }

  /**
   * Whether the job's evaluation would find nothing to stop, remove or place (reconcile.ts), so none is asked for:
   * - it is final, no task holds an allocation and no agent lists any of them (a finished job), or
   * - it is neither final nor being cancelled, not a training gang (gang restarts, elastic growth), and every task
   *   is running (assigned, starting, running) listed only where and at the epoch it runs, or final and listed
   *   nowhere (a task that starts or runs in a batch or inference job).
   * Each was one no-op evaluation per report batch that changed a state (the job's lock, a read, a copy of the
   * job and a reconcile): under bench:e2e one for `running` and one for the final report of every job.
   */
  private nothingLeftFor(job: Job): boolean {
    const unlisted = (t: Job["tasks"][number]) => this.d.allocs.listings(t.id).length === 0;
    if (isRetired(job)) return job.tasks.every(unlisted);
    if (isFinalJobState(job.state) || job.cancelRequested || job.spec.kind === "training") return false;
    return job.tasks.every((t) => {
      if (isFinalTaskState(t.state)) return unlisted(t);
      if (!ACTIVE.has(t.state)) return false;
      const listed = this.d.allocs.listings(t.id);
      return listed.length === 1 && listed[0]!.agentId === t.agentId && listed[0]!.assignment.epoch === t.epoch;
    });
  }

  /**
   * Under the job's lock: folds every report queued for the job, in arrival order, into ONE job write (CAS),
   * then removes the listings the final ones name (group-committed per agent) and answers them all; an error
   * fails them all (each is redelivered, and folding is idempotent: states only move forward).
   */
  private async foldQueued(jobId: string): Promise<void> {
    const batch = this.pending.get(jobId)?.reports ?? [];
    this.pending.delete(jobId);
    const verdicts: string[] = batch.map(() => "unknown-job");
    try {
      const before = await this.d.jobs.fetch(jobId);
      let stateChanged = false;
      const finals: TaskStatusReport[] = [];
      if (before) {
        const after = await this.d.jobs.mutateLocked(jobId, (job) => {
          let current = job;
          let changed = false;
          finals.length = 0;
          batch.forEach(({ report, receivedAtMs }, i) => {
            const r = foldStatus(current, report, receivedAtMs);
            verdicts[i] = r.verdict;
            if (r.final) finals.push(report);
            if (r.job) {
              current = r.job;
              changed = true;
            }
          });
          return changed ? current : undefined;
        });
        // A checkpoint-only report rewrites the job but changes no state: nothing to re-evaluate.
        stateChanged =
          after !== undefined &&
          after.revision !== before.revision &&
          (after.job.state !== before.job.state ||
            after.job.tasks.some((t, i) => t.state !== before.job.tasks[i]?.state));
        if (finals.length > 0) {
          const freed = await this.d.applier.changeListings(
            [],
            finals.map((r) => ({ agentId: r.agentId, taskId: r.taskId, epoch: r.epoch })),
          );
          if (freed) this.d.capacityFreed();
        }
        // Re-place lost/rejected tasks, stop the siblings of a failed task, clean up a finished job's listings;
        // a job left with nothing to do needs none (nothingLeftFor).
        if (stateChanged && !this.nothingLeftFor(after!.job)) {
          const last = batch.at(-1)!.report;
          const rejected = batch.some((b) => b.report.state === "rejected");
          this.d.evaluate(jobId, `task ${last.taskId} ${last.state}`, rejected);
        }
      }
      batch.forEach(({ report }, i) => {
        if (verdicts[i] !== "unknown-job") this.d.heard?.(report.agentId);
        this.d.metrics.statuses.inc({ verdict: verdicts[i]! });
      });
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}
