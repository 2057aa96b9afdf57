/**
 * What only the leader does, started when the lease is won and stopped when it is lost:
 * 1. recovery — epochs are seeded from KV; every job that is not final or still has listings is reconciled with
 *    adoption on (a crash between an assignment commit and its job commit is adopted, stale listings removed);
 * 2. the durable status consumer resumes where the previous leader stopped;
 * 3. the planner worker, agent liveness, and a periodic sweep of waiting jobs run;
 * 4. extra parts (the market's settlement, usage consumer and budget watch) start after recovery.
 */
import { isFinalJobState } from "@capa/domain";
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
  start(): Promise<void> | void;
  stop(): Promise<void>;
}

export class Leadership {
  private active = false;
  private sweep: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly d: LeadershipDeps) {}

  get isActive(): boolean {
    return this.active;
  }

  /** Starts leader work; resolves once recovery is done and everything runs. */
  start(): Promise<void> {
    if (this.active) return this.starting ?? Promise.resolve();
    this.active = true;
    this.starting = this.run().catch(async (err) => {
      this.d.logger.error({ err }, "leader start failed; stepping back");
      await this.stop();
      throw err;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.d.liveness.stop();
    for (const part of [...(this.d.extras ?? [])].reverse()) await part.stop();
    await this.d.statuses.stop();
    await this.d.worker.stop();
    this.d.queue.clear();
  }

  private async run(): Promise<void> {
    const { jobs, allocs, registry, epochs, worker } = this.d;
    for (const id of registry.dirty()) await registry.persist(id);
    // An agent marked lost whose assignments were not yet cleared (the previous leader stopped in between).
    for (const e of registry.list())
      if (e.record.lost && (allocs.get(e.record.advert.agentId)?.value.tasks.length ?? 0) > 0)
        await this.d.liveness.lose(e.record.advert.agentId);
    for (const e of jobs.list()) for (const t of e.job.tasks) epochs.observe(t.epoch);
    for (const { assignment } of allocs.all()) epochs.observe(assignment.epoch);

    const listed = new Set<string>();
    const orphans: { agentId: string; taskId: string; epoch: number }[] = [];
    for (const { agentId, assignment } of allocs.all()) {
      if (jobs.get(assignment.jobId)) listed.add(assignment.jobId);
      else orphans.push({ agentId, taskId: assignment.taskId, epoch: assignment.epoch });
    }
    if (orphans.length > 0) {
      this.d.logger.warn({ count: orphans.length }, "removing assignments of unknown jobs");
      await this.d.applier.changeListings([], orphans);
    }
    let recovered = 0;
    for (const { job } of jobs.list()) {
      if (!this.active) return;
      if (isFinalJobState(job.state) && !listed.has(job.id)) continue;
      await worker.evaluate({ jobId: job.id, reason: "recovery", notBeforeMs: 0, attempt: 0 }, true);
      recovered++;
    }
    if (!this.active) return;
    this.d.logger.info({ recovered }, "leader recovery done");
    await this.d.statuses.start();
    for (const part of this.d.extras ?? []) await part.start();
    worker.start();
    worker.enqueueWaiting("leader elected");
    this.d.liveness.start();
    this.sweep = setInterval(() => worker.enqueueWaiting("periodic sweep"), this.d.sweepIntervalMs);
  }
}
