/**
 * What only the leader does, started when the lease is won and stopped when it is lost:
 * 1. recovery — epochs are seeded from KV; every job that is not final or still has listings is reconciled with
 *    adoption on (a crash between an assignment commit and its job commit is adopted, stale listings removed);
 * 2. the durable status consumer resumes where the previous leader stopped;
 * 3. the planner worker, agent liveness, and a periodic sweep of waiting jobs run;
 * 4. extra parts (the market's settlement, usage consumer and budget watch) start after recovery.
 */
import { ConflictError, isFinalJobState } from "@capa/domain";
import type { Logger } from "pino";
import type { AgentLiveness } from "../agents/liveness.js";
import type { AgentRegistry } from "../agents/registry.js";
import type { PlanApplier } from "../planner/apply.js";
import type { EpochSource } from "../planner/epochs.js";
import type { EvalQueue } from "../planner/eval-queue.js";
import type { PlannerWorker } from "../planner/worker.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import type { JobRepo } from "../store/job-repo.js";
import type { StatusConsumer } from "../tasks/status-consumer.js";

export interface LeadershipDeps {
  jobs: JobRepo;
  allocs: AllocRepo;
  registry: AgentRegistry;
  applier: PlanApplier;
  epochs: EpochSource;
  queue: EvalQueue;
  worker: PlannerWorker;
  liveness: AgentLiveness;
  statuses: StatusConsumer;
  logger: Logger;
  sweepIntervalMs: number;
  /** More leader-only work (the market: settlement, usage, budget watch), started after recovery, stopped first. */
  extras?: LeaderPart[];
}

export interface LeaderPart {
  /** Must be idempotent; a part stopped while its start was pending must not start working afterwards. */
  start(): Promise<void> | void;
  /** Must be idempotent (it may run again after a start that was overtaken by a stop). */
  stop(): Promise<void>;
}

const ignore = (): void => undefined;
/** Evaluations of one job in recovery before it is left to the worker's retries. */
const RECOVERY_ATTEMPTS = 3;

/**
 * Starts and stops the leader-only work. Every start runs under a generation; `stop()` bumps it, so a start that
 * was still awaiting (recovery, a part's start) notices at its next step, stops the parts it started itself and
 * returns without starting anything else. A new start waits until the previous start and stop have settled, so
 * a stale start never undoes the work of a newer one.
 */
export class Leadership {
  private active = false;
  private generation = 0;
  private sweep: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  /** Settles when the last start or stop has finished (either way); the next transition waits for it. */
  private settled: Promise<void> = Promise.resolve();

  constructor(private readonly d: LeadershipDeps) {}

  get isActive(): boolean {
    return this.active;
  }

  /** Starts leader work; resolves once recovery is done and everything runs (or once a stop overtook it). */
  start(): Promise<void> {
    if (this.active) return this.starting ?? Promise.resolve();
    this.active = true;
    const generation = ++this.generation;
    const starting = this.settled.then(() => this.run(generation));
    this.starting = starting;
    this.settled = starting.then(ignore, ignore);
    return starting;
  }

  /** Stops leader work at once; resolves when nothing leader-only runs any more (a pending start included). */
  stop(): Promise<void> {
    if (!this.active) return this.settled;
    this.active = false;
    this.generation++;
    const running = this.settled;
    const stopping = this.halt().then(() => running);
    this.settled = stopping.then(ignore, ignore);
    return stopping;
  }

  private current(generation: number): boolean {
    return this.active && generation === this.generation;
  }

  /** Stops everything; each step is idempotent, so it may run again (a start that a stop overtook). */
  private async halt(): Promise<void> {
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.d.liveness.stop();
    for (const part of [...(this.d.extras ?? [])].reverse()) await part.stop();
    await this.d.statuses.stop();
    await this.d.worker.stop();
    this.d.queue.clear();
  }

  private async run(generation: number): Promise<void> {
    const started: LeaderPart[] = [];
    try {
      if (!this.current(generation)) return;
      if (!(await this.recover(generation))) return;
      for (const part of [this.d.statuses, ...(this.d.extras ?? [])]) {
        started.push(part);
        await part.start();
        if (!this.current(generation)) return;
      }
      // Nothing is awaited from here on: the stop that comes next sees all of it.
      const { worker } = this.d;
      worker.start();
      worker.enqueueWaiting("leader elected");
      this.d.liveness.start();
      this.sweep = setInterval(() => worker.enqueueWaiting("periodic sweep"), this.d.sweepIntervalMs);
      started.length = 0;
    } catch (err) {
      if (this.current(generation)) {
        this.d.logger.error({ err }, "leader start failed; stepping back");
        this.active = false;
        this.generation++;
        started.length = 0;
        await this.halt();
        throw err;
      }
      this.d.logger.warn({ err }, "an abandoned leader start failed");
    } finally {
      // Overtaken by a stop: the stop already ran, so undo what this start began after it (or while it ran).
      for (const part of started.reverse())
        await part.stop().catch((err) => this.d.logger.warn({ err }, "undo failed"));
    }
  }

  /** Recovery; false when a stop overtook it. */
  private async recover(generation: number): Promise<boolean> {
    const { jobs, allocs, registry, epochs } = this.d;
    // Everything below reads the listings: they must include the previous leader's last commits, which this
    // replica's watch may not have delivered yet (it lags, or is re-subscribing after NATS restarted).
    await allocs.catchUp();
    if (!this.current(generation)) return false;
    for (const id of registry.dirty()) {
      await registry.persist(id);
      if (!this.current(generation)) return false;
    }
    // An agent marked lost whose assignments were not yet cleared (the previous leader stopped in between).
    for (const e of registry.list())
      if (e.record.lost && (allocs.get(e.record.advert.agentId)?.value.tasks.length ?? 0) > 0) {
        await this.d.liveness.lose(e.record.advert.agentId);
        if (!this.current(generation)) return false;
      }
    // Retired jobs' epochs count too (kept in their summaries): no epoch is ever issued twice.
    for (const s of jobs.allSummaries()) epochs.observe(s.maxEpoch);
    for (const { assignment } of allocs.all()) epochs.observe(assignment.epoch);

    const listed = new Set<string>();
    const orphans: { agentId: string; taskId: string; epoch: number }[] = [];
    for (const { agentId, assignment } of allocs.all()) {
      if (jobs.summary(assignment.jobId)) listed.add(assignment.jobId);
      else orphans.push({ agentId, taskId: assignment.taskId, epoch: assignment.epoch });
    }
    if (orphans.length > 0) {
      this.d.logger.warn({ count: orphans.length }, "removing assignments of unknown jobs");
      await this.d.applier.changeListings([], orphans);
      if (!this.current(generation)) return false;
    }
    let recovered = 0;
    // Active jobs, and retired ones an agent is still assigned (their assignments are removed by the evaluation).
    const toRecover = new Set<string>();
    for (const { job } of jobs.listActive())
      if (!isFinalJobState(job.state) || listed.has(job.id)) toRecover.add(job.id);
    for (const id of listed) toRecover.add(id);
    let deferred = 0;
    for (const jobId of toRecover) {
      if (await this.recoverJob(jobId)) recovered++;
      else deferred++;
      if (!this.current(generation)) return false;
    }
    if (deferred > 0) this.d.logger.warn({ deferred }, "jobs left to the worker's retries after recovery");
    this.d.logger.info({ recovered }, "leader recovery done");
    return true;
  }

  /**
   * Recovery's evaluation of one job, adopting what the agents hold. A conflict means this replica's cached
   * revision is behind the store (after every NATS server restarted, its watch can miss writes): the job is read
   * back and evaluated again. A job that still fails is handed to the worker's own retries, still adopting, so one
   * job never keeps a new leader from starting (it used to fail the whole start, retried forever on the same stale
   * revision, and no acknowledged job finished). True when it was evaluated here.
   */
  private async recoverJob(jobId: string): Promise<boolean> {
    const { jobs, worker, queue } = this.d;
    let failure: unknown;
    for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
      try {
        await worker.evaluate({ jobId, reason: "recovery", notBeforeMs: 0, attempt: 0 }, true);
        return true;
      } catch (err) {
        failure = err;
        if (!(err instanceof ConflictError)) break;
        await jobs.refresh(jobId).catch(ignore);
      }
    }
    this.d.logger.warn({ err: failure, jobId }, "recovery of a job failed; the worker retries it, adopting");
    worker.adoptOnNext(jobId);
    queue.enqueue(jobId, "recovery retry", 0, 1);
    return false;
  }
}
