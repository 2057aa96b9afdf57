/**
 * Settlement (leader only). When a task's allocation ends (succeeded, failed, cancelled, rejected, lost,
 * preempted) its usage reports are read back from CAPA_TASKS and the allocation is metered against the
 * scheduler's observed window and written to the ledger (`settleAllocation`: charge, fee, payout, signed receipt,
 * each exactly once per task + epoch). When the job is final, the tenant's reservation is settled with the job's
 * total charges (read from the ledger, so every epoch counts once) and `job.spent` is set.
 *
 * Work runs one item at a time on a queue; a failure (ledger or store unavailable) is retried with backoff. At
 * leader start every final task and final job in KV is settled again: everything is idempotent, so a crash
 * anywhere in between (or a replay of usage reports) never bills twice. Known cost: that recovery pass reads the
 * ledger for every final task still in `capa_jobs`.
 */
import type { Store } from "@capa/bus";
import { isFinalJobState, type Job, type Micros, type Task } from "@capa/domain";
import { type BudgetStore, type Ledger, readUsageReports, settleAllocation } from "@capa/ledger";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import type { JobEntry, JobRepo } from "../store/job-repo.js";
import { allocKey, finishedAllocationOf, isSettleable } from "./allocations.js";

export interface SettlerDeps {
  ledger: Ledger;
  budgets: BudgetStore;
  jobs: JobRepo;
  store: Store;
  /** The provider named in the agent's advert ("" when unknown). */
  providerOf: (agentId: string) => string;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
}

const MAX_BACKOFF_MS = 30_000;
const END_OF_TIME = Number.MAX_SAFE_INTEGER;

export class Settler {
  private active = false;
  private chain: Promise<void> = Promise.resolve();
  /** Work items queued or running, by key (an allocation, or "job:<id>"). */
  private readonly queued = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Charges per job by allocation, as stored in the ledger (settled here, or read back). */
  private readonly charges = new Map<string, Map<string, Micros>>();
  private readonly loaded = new Set<string>();
  private readonly settledAllocs = new Set<string>();
  private readonly settledJobs = new Set<string>();

  constructor(private readonly d: SettlerDeps) {}

  /** Starts settling and queues the recovery pass over every job in the store. */
  start(): void {
    this.active = true;
    for (const entry of this.d.jobs.list()) this.observe(entry);
  }

  async stop(): Promise<void> {
    this.active = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.chain;
  }

  /** Feed of job changes (JobRepo.onChange): queues what became settleable. */
  readonly observe = (entry: JobEntry): void => {
    if (!this.active) return;
    const { job } = entry;
    for (const task of job.tasks) {
      if (!isSettleable(task)) continue;
      const key = allocKey(task.id, task.epoch);
      if (this.settledAllocs.has(key)) continue;
      // A snapshot: a re-placement overwrites the task (new agent, new epoch) before this runs.
      const [j, t] = [structuredClone(job), structuredClone(task)];
      this.schedule(key, () => this.settleTask(j, t));
    }
    if (isFinalJobState(job.state) && !this.settledJobs.has(job.id))
      this.schedule(`job:${job.id}`, () => this.settleJob(job.id));
  };

  /** What the job's finished allocations were charged (ledger truth, cached per job). */
  async settledSpend(job: Job): Promise<Micros> {
    await this.load(job);
    let total = 0;
    for (const amount of this.charges.get(job.id)?.values() ?? []) total += amount;
    return total;
  }

  private async load(job: Job): Promise<void> {
    if (this.loaded.has(job.id)) return;
    const invoice = await this.d.ledger.invoice(job.tenant, 0, END_OF_TIME, job.id);
    const map = this.chargesOf(job.id);
    for (const line of invoice.lines) for (const c of line.charges) map.set(allocKey(c.taskId, c.epoch), c.amount);
    this.loaded.add(job.id);
  }

  private chargesOf(jobId: string): Map<string, Micros> {
    let map = this.charges.get(jobId);
    if (!map) {
      map = new Map();
      this.charges.set(jobId, map);
    }
    return map;
  }

  private schedule(key: string, work: () => Promise<void>, attempt = 0): void {
    if (this.queued.has(key) && attempt === 0) return;
    this.queued.add(key);
    this.chain = this.chain.then(async () => {
      if (!this.active) {
        this.queued.delete(key);
        return;
      }
      try {
        await work();
        this.queued.delete(key);
      } catch (err) {
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 6));
        this.d.logger.warn({ err, key, delay }, "settlement failed; retrying");
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (this.active) this.schedule(key, work, attempt + 1);
          else this.queued.delete(key);
        }, delay);
        this.timers.add(timer);
      }
    });
  }

  private async settleTask(job: Job, task: Task): Promise<void> {
    const key = allocKey(task.id, task.epoch);
    const allocation = finishedAllocationOf(job, task, this.d.providerOf(task.agentId));
    if (!allocation) return;
    const reports = await readUsageReports(this.d.store.js, this.d.store.jsm, task.id);
    const { metered, record } = await settleAllocation(this.d.ledger, allocation, reports, this.d.now());
    this.chargesOf(job.id).set(key, record.entries.charge.amount);
    this.settledAllocs.add(key);
    this.d.metrics.settlements.inc({ outcome: record.alreadySettled ? "already-settled" : "settled" });
    if (!record.alreadySettled)
      this.d.logger.info(
        {
          taskId: task.id,
          epoch: task.epoch,
          amount: record.entries.charge.amount,
          gpuMs: metered.billableGpuMs,
          basis: metered.basis,
          rejectedReports: metered.rejected.length,
        },
        "allocation settled",
      );
  }

  private async settleJob(jobId: string): Promise<void> {
    const entry = this.d.jobs.get(jobId);
    if (!entry || !isFinalJobState(entry.job.state)) return;
    const { job } = entry;
    const unsettled = job.tasks.filter((t) => isSettleable(t) && !this.settledAllocs.has(allocKey(t.id, t.epoch)));
    // Its allocations first (they are queued ahead of this); one still failing retries the whole job later.
    if (unsettled.length > 0) throw new Error(`job ${jobId}: ${unsettled.length} allocation(s) not settled yet`);
    this.loaded.delete(jobId);
    const total = await this.settledSpend(job);
    const outcome = await this.d.budgets.settle(job.tenant, jobId, total, this.d.now());
    if (outcome.overrun > 0)
      this.d.logger.warn({ jobId, tenant: job.tenant, overrun: outcome.overrun }, "job spent past its reservation");
    await this.d.jobs.mutate(jobId, (j) => (j.spent === total ? undefined : { ...j, spent: total }));
    this.settledJobs.add(jobId);
  }
}
