/**
 * Settlement (leader only). When a task's allocation ends (succeeded, failed, cancelled, rejected, lost,
 * preempted) its usage reports are read back from CAPA_TASKS and the allocation is metered against the
 * scheduler's observed window and written to the ledger (`settleAllocation`: charge, fee, payout, signed receipt,
 * each exactly once per task + epoch). When the job is final, the tenant's reservation is settled with the job's
 * total charges and `job.spent` is set.
 *
 * A job with a budget is never charged more than its budget: each allocation is metered with
 * `maxAmount` = budget − the job's other charges, so the allocation that would pass it is billed only for the
 * GPU time up to the budget (the receipt's window stays the observed one; its GPU time is the capped one). The
 * budget watch stops such a job early enough to cover its kill grace, so the cap only absorbs stop latency.
 *
 * A final job is settled only once none of its tasks holds an allocation any more: a job fails as soon as one
 * task fails, while its siblings still run until the scheduler has stopped them; their allocations end later
 * and are part of the job's total. Each job change re-queues the job, so it is settled after its last task ends.
 *
 * Bookkeeping per job, in `capa_budgets` (BudgetStore): `allocs.<jobId>` lists the job's allocations (noted
 * before the ledger write) with their charges (noted after), so a job's spend is one KV read, plus an
 * exact-subject ledger read for an allocation whose charge was not noted (a crash in between); and
 * `settled.<jobId>` marks a completely settled job and keeps its charges, after which `allocs.<jobId>` is
 * deleted. At leader start the settled markers are listed once and those jobs skipped (their finished
 * allocations counted as `capa_settlements_total{outcome="skipped"}`), unless an `allocs.<jobId>` is left
 * (a crash after the marker, or during a late settlement): that job is checked against its marker. The others
 * are settled again (idempotent, so a crash anywhere never bills twice). The in-memory state of a job is
 * dropped once it is settled.
 *
 * A settled job whose record changes is checked against its marker: an allocation missing there (one that
 * ended after the job was settled) is still billed, added to `job.spent` and to the tenant's settled spend
 * (`settle-late`; a crash between that and the marker's update may count it twice there, never in the ledger).
 *
 * Work runs on one lane per job: the items of one job (its allocations, its settlement, a late settlement) run
 * one at a time in the order they were queued, so a job's bookkeeping never races itself; the lanes of
 * different jobs run concurrently (at most MAX_CONCURRENT_SETTLEMENTS items at once), so the store's round
 * trips of many jobs overlap. Exactly-once does not depend on that order: every ledger write is idempotent per
 * task + epoch, and tenant budget operations are group-committed (CAS). A failure (ledger or store
 * unavailable) is retried with backoff.
 */
import type { Store } from "@capa/bus";
import { clonePlain, isFinalJobState, type Job, jobIdOfTask, type Micros, type Task } from "@capa/domain";
import { type BudgetStore, type JobSettledMarker, type Ledger, readUsageReports, settleAllocation } from "@capa/ledger";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import type { JobEntry, JobRepo } from "../store/job-repo.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { allocKey, finishedAllocationOf, holdsAllocation, isSettleable } from "./allocations.js";
import type { SeenUsage } from "./seen-usage.js";

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
  /** Usage reports the usage consumer saw: an allocation's complete set is not read back from the stream. */
  seenUsage?: SeenUsage;
}

const MAX_BACKOFF_MS = 30_000;
const RECOVERY = "recovery";
/** Work items running at once (each on its own job's lane). */
const MAX_CONCURRENT_SETTLEMENTS = 16;
/** Jobs read back at once by the recovery pass. */
const RECOVERY_READS = 64;

/** The lane of a work item: its job ("job:<id>", "late:<id>", or an allocation "<taskId>:<epoch>"). */
function laneOf(key: string): string {
  if (key === RECOVERY) return RECOVERY;
  if (key.startsWith("job:")) return key.slice(4);
  if (key.startsWith("late:")) return key.slice(5);
  return jobIdOfTask(key.slice(0, key.lastIndexOf(":")));
}

/**
 * A charge of the job; `complete` = its receipt is written (the allocation needs no more work); `unnoted` = it is
 * not in `allocs.<jobId>` (the last allocation of a final job, whose marker comes next: see settleTask).
 */
interface Charge {
  amount: Micros;
  complete: boolean;
  unnoted?: boolean;
}

export class Settler {
  private active = false;
  /** Bumped at each start and stop: work queued in an earlier leader term never runs nor touches `queued`. */
  private term = 0;
  /** False until the settled markers are read at start; observations before are covered by the recovery pass. */
  private ready = false;
  private readonly lanes = new KeyedMutex();
  /** Work items queued or running (their lane's promise), for idle() and stop(). */
  private readonly inFlight = new Set<Promise<void>>();
  private running = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Work items queued or running, by key (an allocation, "job:<id>", or "recovery"). */
  private readonly queued = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Charges of unsettled jobs by allocation (from `allocs.<jobId>`, then kept current); dropped once settled. */
  private readonly charges = new Map<string, Map<string, Charge>>();
  /** Ids of completely settled jobs (their `settled.<jobId>` marker exists). */
  private readonly settledJobs = new Set<string>();
  /**
   * Jobs whose `allocs.<jobId>` may exist (listed at recovery, found by load, or noted into this term): only
   * those are read when loading charges and purged once settled. A job loaded without one and never noted has none to remove (this leader is the only
   * writer of the key; a leftover from a deposed one is found by the next recovery's `jobAllocationIds`).
   */
  private readonly withAllocsDoc = new Set<string>();
  /**
   * Set once this term's recovery listed every `allocs.<jobId>` key into `withAllocsDoc`: from then on a job not
   * in it has no such document (this leader is its only writer, and notes it into the set first), so loading its
   * charges costs no KV read. That read was one round trip per settled job, always answered "none" for a job
   * that ran once. Before the listing (a budget check at leader start) the document is read as before.
   */
  private allocsListed = false;

  constructor(private readonly d: SettlerDeps) {
    // A job removed by retention is never settled again: its id need not be remembered (memory follows the
    // retention window, not all history).
    d.jobs.onForget?.((id) => {
      this.settledJobs.delete(id);
      this.charges.delete(id);
      this.withAllocsDoc.delete(id);
    });
  }

  /** Starts settling: reads the settled markers, then queues everything else in the store (recovery). */
  start(): void {
    this.active = true;
    this.ready = false;
    this.term++;
    // Nothing queued in an earlier term survives it (stop cleared its retry timers).
    this.queued.clear();
    // Another leader may have settled meanwhile: nothing cached from an earlier term is trusted.
    this.charges.clear();
    this.settledJobs.clear();
    this.withAllocsDoc.clear();
    this.allocsListed = false;
    this.schedule(RECOVERY, async () => {
      for (const id of await this.d.budgets.settledJobIds()) this.settledJobs.add(id);
      // Settled jobs that still have an allocs document: a crash after the marker or during a late settlement.
      for (const id of await this.d.budgets.jobAllocationIds()) {
        this.withAllocsDoc.add(id);
        if (this.settledJobs.has(id)) this.schedule(`late:${id}`, () => this.settleLate(id));
      }
      this.allocsListed = true;
      this.ready = true;
      let skipped = 0;
      const unsettled: string[] = [];
      for (const summary of this.d.jobs.allSummaries()) {
        if (this.settledJobs.has(summary.id)) skipped += summary.endedAllocations;
        else unsettled.push(summary.id);
      }
      // Unsettled: from memory, or read back (a retired job out of the cache; recovery only), a batch at a time.
      for (let i = 0; i < unsettled.length; i += RECOVERY_READS) {
        for (const entry of await this.d.jobs.fetchMany(unsettled.slice(i, i + RECOVERY_READS))) this.observe(entry);
      }
      // Finished allocations of completely settled jobs: not read again (counted, so recovery is observable).
      this.d.metrics.settlements.inc({ outcome: "skipped" }, skipped);
    });
  }

  async stop(): Promise<void> {
    this.active = false;
    this.ready = false;
    this.term++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // A key left here (its retry timer was just cleared) would de-duplicate the next term's work away for ever.
    this.queued.clear();
    await this.idle();
    this.charges.clear();
    this.withAllocsDoc.clear();
    this.allocsListed = false;
  }

  /** Resolves once the queue is empty (work waiting on a retry timer is not counted; for tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async slot(): Promise<void> {
    if (this.running < MAX_CONCURRENT_SETTLEMENTS) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.running--;
  }

  /** Jobs whose settlement state is held in memory (for tests and metrics). */
  get trackedJobs(): number {
    return this.charges.size;
  }

  /** Feed of job changes (JobRepo.onChange): queues what became settleable. */
  readonly observe = (entry: JobEntry): void => {
    if (!this.active || !this.ready) return;
    const { job } = entry;
    if (this.settledJobs.has(job.id)) {
      // Settled already: only an allocation that ended since is work (one marker read tells).
      if (job.tasks.some(isSettleable)) this.schedule(`late:${job.id}`, () => this.settleLate(job.id));
      return;
    }
    for (const task of job.tasks) {
      if (!isSettleable(task)) continue;
      const key = allocKey(task.id, task.epoch);
      if (this.charges.get(job.id)?.get(key)?.complete) continue;
      // A snapshot: a re-placement overwrites the task (new agent, new epoch) before this runs.
      const [j, t] = [clonePlain(job), clonePlain(task)];
      this.schedule(key, () => this.settleTask(j, t));
    }
    if (isFinalJobState(job.state)) this.schedule(`job:${job.id}`, () => this.settleJob(job.id));
  };

  /** What the job's finished allocations were charged (ledger truth, cached per unsettled job). */
  async settledSpend(job: Job): Promise<Micros> {
    let total = 0;
    for (const c of (await this.load(job)).values()) total += c.amount;
    return total;
  }

  /**
   * The job's charges: those in its settled marker (a settled job), then `allocs.<jobId>` from KV, a charge
   * not noted there read by its exact ledger subject.
   */
  private async load(job: Job): Promise<Map<string, Charge>> {
    const cached = this.charges.get(job.id);
    if (cached) return cached;
    const map = new Map<string, Charge>();
    if (this.settledJobs.has(job.id)) {
      const marker = await this.d.budgets.settledMarker(job.id);
      for (const [key, amount] of Object.entries(marker?.allocs ?? {})) map.set(key, { amount, complete: true });
    }
    const doc =
      !this.allocsListed || this.withAllocsDoc.has(job.id) ? await this.d.budgets.jobAllocations(job.id) : undefined;
    if (doc) this.withAllocsDoc.add(job.id);
    for (const [key, a] of Object.entries(doc?.allocs ?? {})) {
      if (a.charge !== null) {
        map.set(key, { amount: a.charge, complete: true });
        continue;
      }
      // Noted before its ledger write; the write may have happened (a crash before the second note).
      const charge = await this.d.ledger.chargeOf(job.tenant, a.taskId, a.epoch);
      if (charge) map.set(key, { amount: charge.amount, complete: false });
    }
    // Another caller may have loaded meanwhile; keep the first map (settleTask updates it in place).
    const raced = this.charges.get(job.id);
    if (raced) return raced;
    this.charges.set(job.id, map);
    return map;
  }

  /**
   * Queues `work` once per key (a key waiting to run or for its retry is not queued again; one that is running
   * is, so a change seen meanwhile is never lost), except the recovery pass, which is never de-duplicated: it is
   * what makes the settler ready in a new term.
   */
  private schedule(key: string, work: () => Promise<void>, attempt = 0): void {
    if (this.queued.has(key) && attempt === 0 && key !== RECOVERY) return;
    const term = this.term;
    this.queued.add(key);
    const current = () => this.active && this.term === term;
    const run = this.lanes.run(laneOf(key), async () => {
      if (!current()) return; // stop/start cleared `queued` already
      await this.slot();
      try {
        if (!current()) return;
        this.queued.delete(key);
        await work();
      } catch (err) {
        // Queued again while it ran: that run retries it.
        if (!current() || this.queued.has(key)) return;
        this.queued.add(key);
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 6));
        this.d.logger.warn({ err, key, delay }, "settlement failed; retrying");
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (current()) this.schedule(key, work, attempt + 1);
        }, delay);
        this.timers.add(timer);
      } finally {
        this.releaseSlot();
      }
    });
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private async settleTask(job: Job, task: Task): Promise<void> {
    const key = allocKey(task.id, task.epoch);
    const allocation = finishedAllocationOf(job, task, this.d.providerOf(task.agentId));
    if (!allocation) return;
    const charges = await this.load(job);
    if (charges.get(key)?.complete) {
      if (this.settledJobs.has(job.id)) this.charges.delete(job.id); // queued before the job was settled
      return;
    }
    const alloc = { taskId: task.id, epoch: task.epoch };
    const noted = !this.isLastOfFinalJob(job, key, charges);
    if (noted) {
      this.withAllocsDoc.add(job.id);
      await this.d.budgets.noteAllocation(job.tenant, job.id, alloc);
    }
    // A budgeted job is never charged past its budget (a stored charge from an earlier attempt wins anyway).
    let others = 0;
    for (const [k, c] of charges) if (k !== key) others += c.amount;
    const maxAmount = job.spec.budget > 0 ? Math.max(0, job.spec.budget - others) : undefined;
    const reports =
      this.d.seenUsage?.complete(task.id, allocation.agentId, task.epoch) ??
      (await readUsageReports(this.d.store.js, this.d.store.jsm, task.id, allocation.agentId));
    const { metered, record } = await settleAllocation(this.d.ledger, allocation, reports, this.d.now(), {
      maxAmount,
    });
    const amount = record.entries.charge.amount;
    if (noted) await this.d.budgets.noteAllocation(job.tenant, job.id, alloc, amount);
    charges.set(key, { amount, complete: true, ...(noted ? {} : { unnoted: true }) });
    this.d.seenUsage?.forget(task.id, allocation.agentId);
    this.d.metrics.settlements.inc({ outcome: record.alreadySettled ? "already-settled" : "settled" });
    if (!record.alreadySettled)
      this.d.logger.info(
        {
          taskId: task.id,
          epoch: task.epoch,
          amount,
          gpuMs: metered.billableGpuMs,
          basis: metered.basis,
          rejectedReports: metered.rejected.length,
        },
        "allocation settled",
      );
  }

  /**
   * True when `key` is the last allocation of a final job that is not settled yet: no task holds an allocation,
   * every other ended allocation is charged and noted. Its settlement then needs neither note in `allocs.<jobId>`
   * (two writes and their reads): the job's marker, written next on the same lane, holds its charge. Crash-safe
   * because the allocation is the task's current one in the final job record, which nothing changes any more: a
   * new leader's recovery settles the job again, and settling the allocation again finds its ledger entry
   * (exactly once per task + epoch) with the same amount; its budget cap is computed from the other charges,
   * all durable in `allocs.<jobId>`. (A note exists for the allocations a record stops naming: earlier epochs.)
   */
  private isLastOfFinalJob(job: Job, key: string, charges: Map<string, Charge>): boolean {
    if (!isFinalJobState(job.state) || this.settledJobs.has(job.id)) return false;
    for (const t of job.tasks) {
      if (holdsAllocation(t)) return false;
      if (!isSettleable(t)) continue;
      const k = allocKey(t.id, t.epoch);
      const c = charges.get(k);
      if (k !== key && (!c?.complete || c.unnoted)) return false;
    }
    for (const [k, c] of charges) if (k !== key && c.unnoted) return false;
    return true;
  }

  /**
   * A settled job seen again: bills each allocation its marker does not hold (and one noted in a leftover
   * `allocs.<jobId>`), then settles the job again; with nothing new, only drops the leftover document.
   */
  private async settleLate(jobId: string): Promise<void> {
    const entry = await this.d.jobs.fetch(jobId);
    const marker = await this.d.budgets.settledMarker(jobId);
    if (!entry || !marker) {
      await this.d.budgets.deleteJobAllocations(jobId);
      return;
    }
    const { job } = entry;
    if (job.tasks.some(holdsAllocation)) return; // this job is seen again when they end
    this.charges.delete(jobId);
    const charges = await this.load(job);
    const inMarker = new Set(Object.keys(marker.allocs ?? {}));
    const missing = job.tasks.filter((t) => isSettleable(t) && !charges.get(allocKey(t.id, t.epoch))?.complete);
    const fresh = [...charges.keys()].filter((k) => !inMarker.has(k));
    if (missing.length === 0 && (fresh.length === 0 || marker.allocs === undefined)) {
      this.charges.delete(jobId);
      // A marker written before it kept the charges: its allocs document is the record, kept.
      if (marker.allocs !== undefined) await this.d.budgets.deleteJobAllocations(jobId);
      return;
    }
    this.d.logger.warn({ jobId, late: missing.length + fresh.length }, "allocations ended after their job was settled");
    for (const task of missing) await this.settleTask(structuredClone(job), structuredClone(task));
    await this.settleJob(jobId, marker);
  }

  private async settleJob(jobId: string, settled?: JobSettledMarker): Promise<void> {
    if (this.settledJobs.has(jobId) && !settled) return;
    // Memory, else KV: a backlog of settlements may outlast a retired job's stay in the cache.
    const entry = await this.d.jobs.fetch(jobId);
    if (!entry || !isFinalJobState(entry.job.state)) return;
    const { job } = entry;
    // Siblings of a failed task still run until stopped: their allocations are part of the total. Decided on
    // the record read just now (no await since): the change that ends the last one queues this job again.
    const live = job.tasks.filter(holdsAllocation).length;
    if (live > 0) {
      this.d.logger.debug({ jobId, live }, "final job not settled yet: tasks still hold allocations");
      return;
    }
    const charges = await this.load(job);
    const unsettled = job.tasks.filter((t) => isSettleable(t) && !charges.get(allocKey(t.id, t.epoch))?.complete);
    // Its allocations first (they are queued ahead of this); one still failing retries the whole job later.
    if (unsettled.length > 0) throw new Error(`job ${jobId}: ${unsettled.length} allocation(s) not settled yet`);
    let total = 0;
    const allocs: Record<string, Micros> = {};
    for (const [key, c] of charges) {
      total += c.amount;
      allocs[key] = c.amount;
    }
    const nowMs = this.d.now();
    if (settled) {
      // Late allocations: the reservation is gone; what they add still counts in the tenant's month.
      await this.d.budgets.apply(
        job.tenant,
        { kind: "settle-late", jobId, amount: Math.max(0, total - settled.total) },
        nowMs,
      );
    } else {
      const outcome = await this.d.budgets.settle(job.tenant, jobId, total, nowMs);
      if (outcome.overrun > 0)
        this.d.logger.warn({ jobId, tenant: job.tenant, overrun: outcome.overrun }, "job spent past its reservation");
    }
    await this.d.jobs.mutate(jobId, (j) => (j.spent === total ? undefined : { ...j, spent: total }));
    await this.d.budgets.markJobSettled({ jobId, tenant: job.tenant, total, settledAtMs: nowMs, allocs }, !!settled);
    this.settledJobs.add(jobId);
    this.charges.delete(jobId);
    // The marker holds the charges now: the per-job document is not needed any more (when there is one).
    if (settled || this.withAllocsDoc.has(jobId)) await this.d.budgets.deleteJobAllocations(jobId);
    this.withAllocsDoc.delete(jobId);
  }
}
