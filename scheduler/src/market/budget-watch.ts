/**
 * The running-job budget watch (leader only). A job's spend = its settled allocations (ledger) + its running
 * allocations so far (locked price × GPUs × time since the scheduler saw them start). Checked on every accepted
 * usage report and by a per-job timer armed for the moment the spend reaches the next threshold
 * (`msUntilBudgetReached`), so a stop does not wait for the next usage sample:
 *
 * - job budget (`spec.budget`): at 80 % one warning (the job's reason, so WatchJob sends one event); the job is
 *   cancelled with reason `budget-exhausted` once spend + the cost of its kill grace at the running rate
 *   reaches the budget, so the SIGTERM → SIGKILL grace it is still billed for fits inside the budget. The
 *   settler also caps what a budgeted job is charged at its budget (`MeterOptions.maxAmount`), so stop
 *   latency (timer granularity, status round trips) can never bill a job past its budget either;
 * - tenant hourly cap: whenever the job's placed tasks change, the reservation's rate is raised to the job's
 *   actual running rate (`runningHourly`: locked prices × GPUs) when that is higher, through the same CAS as
 *   admission. A job admitted at rate 0 (nothing matched, no max price) or placed on a dearer offer than quoted
 *   is thus counted at what it costs; a refused raise stops the job with `budget-exhausted: hourly cap
 *   reached: …`. The rate is never lowered while the job lives (a partly placed or preempted job keeps what
 *   admission reserved, so its tasks can come back), only released at settle;
 * - tenant monthly cap: when the spend reaches what admission reserved, the reservation is extended by the
 *   overrun plus one hour at the job's running rate; a refused extension stops the job the same way. So
 *   settled + reserved never passes the tenant's cap by more than one check's worth of metering.
 */
import {
  costForGpuMillis,
  DEFAULT_KILL_GRACE_SECONDS,
  formatUsd,
  isFinalJobState,
  type Job,
  type Micros,
} from "@capa/domain";
import type { BudgetStore } from "@capa/ledger";
import { BudgetExceededError, jobBudgetStatus, msUntilBudgetReached, UnknownReservationError } from "@capa/market";
import type { Logger } from "pino";
import type { SchedulerMetrics } from "../metrics.js";
import type { JobRepo } from "../store/job-repo.js";
import { BUDGET_EXHAUSTED, runningCost, runningHourly } from "./allocations.js";
import type { Settler } from "./settler.js";

export interface BudgetWatchDeps {
  jobs: JobRepo;
  budgets: BudgetStore;
  settler: Settler;
  /** Cancels the job (JobService.cancel): its running tasks are stopped by the leader's next evaluation. */
  cancel: (jobId: string, reason: string) => Promise<unknown>;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  /** Longest wait between two checks of a running job. */
  maxCheckIntervalMs: number;
}

export const BUDGET_WARNING = "budget warning";

export class BudgetWatch {
  private active = false;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly checking = new Map<string, Promise<void>>();
  /**
   * The highest rate confirmed in the job's reservation this term (the reservation never goes below it), so a
   * rate at or under it costs no KV round trip.
   */
  private readonly rates = new Map<string, Micros>();

  constructor(private readonly d: BudgetWatchDeps) {}

  start(): void {
    this.active = true;
    for (const { job } of this.d.jobs.listActive()) if (!isFinalJobState(job.state)) this.check(job.id);
  }

  async stop(): Promise<void> {
    this.active = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.checking.values()]);
    this.rates.clear();
  }

  /** Checks one job now (at most one check per job at a time; a second request while one runs is dropped). */
  check(jobId: string, persistSpend = false): Promise<void> {
    const running = this.checking.get(jobId);
    if (running) return running;
    const work = this.checkOnce(jobId, persistSpend)
      .catch((err) => this.d.logger.warn({ err, jobId }, "budget check failed"))
      .finally(() => this.checking.delete(jobId));
    this.checking.set(jobId, work);
    return work;
  }

  private arm(jobId: string, delayMs: number): void {
    clearTimeout(this.timers.get(jobId));
    if (!this.active) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(jobId);
        void this.check(jobId);
      },
      Math.max(10, Math.min(delayMs, this.d.maxCheckIntervalMs)),
    );
    timer.unref();
    this.timers.set(jobId, timer);
  }

  private async checkOnce(jobId: string, persistSpend: boolean): Promise<void> {
    const entry = this.d.jobs.get(jobId);
    if (!this.active || !entry) return;
    const { job } = entry;
    if (isFinalJobState(job.state) || job.cancelRequested) {
      clearTimeout(this.timers.get(jobId));
      this.timers.delete(jobId);
      this.rates.delete(jobId);
      return;
    }
    const nowMs = this.d.now();
    const hourly = runningHourly(job);
    // Nothing holds GPUs: the spend cannot grow until a task starts (which triggers a check).
    if (hourly === 0) return;
    const running = job.tasks.reduce((n, t) => n + runningCost(t, nowMs), 0);
    const spent = (await this.d.settler.settledSpend(job)) + running;
    const budget = job.spec.budget;
    // What the job goes on costing between the stop request and SIGKILL: it must fit in the budget too.
    const graceS = job.spec.template.killGraceSeconds || DEFAULT_KILL_GRACE_SECONDS;
    const headroom = costForGpuMillis(hourly, graceS * 1000);

    if (budget > 0 && spent + headroom >= budget) {
      // The 80 % warning is never skipped, even when one check jumps past both thresholds.
      if (!job.reason.startsWith(BUDGET_WARNING)) await this.warn(jobId, spent, budget);
      await this.stopJob(
        job,
        `spent ${formatUsd(spent)} of the job's budget ${formatUsd(budget)}, ` +
          `keeping ${formatUsd(headroom)} for its ${graceS} s kill grace`,
      );
      return;
    }
    let reserved = job.reserved;
    const amount = spent >= reserved ? spent - reserved + hourly : 0;
    const confirmed = this.rates.get(jobId) ?? -1;
    if (amount > 0 || hourly > confirmed) {
      try {
        // Raises the rate when the job now runs dearer; never lowers it (see the "extend" op).
        await this.d.budgets.extend(job.tenant, jobId, amount, nowMs, hourly);
        reserved += amount;
        this.rates.set(jobId, Math.max(confirmed, hourly));
      } catch (err) {
        if (err instanceof BudgetExceededError) {
          const why = err.limitKind === "hourly" ? "hourly cap reached" : "reservation could not be extended";
          await this.stopJob(job, `${why}: ${err.message}`);
          return;
        }
        if (!(err instanceof UnknownReservationError)) throw err;
        reserved = Number.MAX_SAFE_INTEGER; // no reservation to extend (settled meanwhile): nothing to guard
        this.rates.set(jobId, Math.max(confirmed, hourly));
      }
    }
    if (jobBudgetStatus(spent, budget) === "warn-80" && !job.reason.startsWith(BUDGET_WARNING))
      await this.warn(jobId, spent, budget);
    if (reserved !== job.reserved || (persistSpend && spent !== job.spent)) {
      await this.d.jobs.mutate(jobId, (j) => {
        if (isFinalJobState(j.state) || j.cancelRequested) return undefined;
        const next = { ...j, spent };
        if (reserved !== j.reserved && reserved !== Number.MAX_SAFE_INTEGER) next.reserved = reserved;
        return next;
      });
    }
    const untilBudget = budget > 0 ? msUntilBudgetReached(spent, budget - headroom, hourly) : undefined;
    const untilReserved = reserved === Number.MAX_SAFE_INTEGER ? undefined : msUntil(spent, reserved, hourly);
    const untilWarn = budget > 0 ? msUntilBudgetReached(spent, Math.ceil((budget * 4) / 5), hourly) : undefined;
    const next = Math.min(
      ...[untilBudget, untilReserved, untilWarn].filter((v): v is number => v !== undefined && v > 0),
      this.d.maxCheckIntervalMs,
    );
    this.arm(jobId, next + 1);
  }

  /** One warning per job: its reason, so WatchJob sends one event. */
  private async warn(jobId: string, spent: Micros, budget: Micros): Promise<void> {
    await this.d.jobs.mutate(jobId, (j) => {
      if (isFinalJobState(j.state) || j.cancelRequested || j.reason.startsWith(BUDGET_WARNING)) return undefined;
      this.d.metrics.budgetEvents.inc({ kind: "warn-80" });
      const reason = `${BUDGET_WARNING}: spent ${formatUsd(spent)} of ${formatUsd(budget)} (80 % reached)`;
      return { ...j, spent, reason };
    });
  }

  private async stopJob(job: Job, why: string): Promise<void> {
    this.d.metrics.budgetEvents.inc({ kind: "stop" });
    this.d.logger.info({ jobId: job.id, tenant: job.tenant, why }, "stopping a job: budget exhausted");
    await this.d.cancel(job.id, `${BUDGET_EXHAUSTED}: ${why}`.slice(0, 512));
  }
}

function msUntil(spent: Micros, limit: Micros, hourly: Micros): number | undefined {
  return msUntilBudgetReached(spent, limit, hourly);
}
