/**
 * Metering: what a finished (or running) allocation costs. The price is the one locked at placement on the
 * allocation, never the agent's current advert.
 *
 * The scheduler bills from its OWN observed window: from when it saw the task running (`startedAtMs`) to when
 * it saw it end (`observedEndMs`: the final status, preemption or loss; 0 while running, then `nowMs`).
 * Agents' usage reports are cumulative from task start, so the newest one supersedes the others: metering
 * takes a maximum, never a sum, and replaying reports (after a scheduler restart) changes nothing. A final
 * report that ends earlier than the observed window shortens it (the agent saw the exit before the status
 * reached the scheduler), so a tenant never pays for time that neither side saw. Reports are rejected, by
 * name, when they belong to no known allocation, to another epoch or agent, or claim time outside the window.
 */
import { costForGpuMillis, type Micros, type UsageReport } from "@capa/domain";

/** Agent and scheduler clocks differ a little; reports may overshoot the window by this much. */
export const DEFAULT_CLOCK_SKEW_TOLERANCE_MS = 5_000;

export interface MeteredAllocation {
  taskId: string;
  jobId: string;
  agentId: string;
  epoch: number;
  gpus: number;
  /** Locked at placement. */
  pricePerGpuHour: Micros;
  placedAtMs: number;
  /** When the scheduler saw the task running; 0 = not yet. */
  startedAtMs: number;
  /** When the scheduler saw the task end; 0 = still running. */
  observedEndMs: number;
}

export type UsageRejection =
  | "unknown-allocation"
  | "stale-epoch"
  | "future-epoch"
  | "wrong-agent"
  | "wrong-job"
  | "gpu-count-mismatch"
  | "before-window"
  | "beyond-window"
  | "inconsistent-claim";

export interface MeterOptions {
  clockSkewToleranceMs?: number;
  /**
   * Most this allocation may be charged (what is left of its job's budget). The window stays what was
   * observed; the billable GPU time is cut to the most that costs no more than this (`maxGpuMillisFor`), so
   * the receipt's arithmetic still holds (amount = price × GPU time, GPU time within the window) and the basis
   * says "budget-cap". Undefined = no cap.
   */
  maxAmount?: Micros;
}

/** The most GPU-ms at `price` whose cost (`costForGpuMillis`, half-up) is at most `amount`. */
export function maxGpuMillisFor(pricePerGpuHour: Micros, amount: Micros): number {
  if (pricePerGpuHour <= 0) return Number.MAX_SAFE_INTEGER;
  if (amount < 0) return 0;
  // cost(g) = floor((2·p·g + H) / 2H) ≤ M  ⇔  2·p·g < (2M + 1)·H, with H = 3 600 000
  const limit = (BigInt(amount) * 2n + 1n) * 3_600_000n - 1n;
  const g = limit / (2n * BigInt(pricePerGpuHour));
  return g > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(g);
}

/** Why a report cannot be used for this allocation, or undefined when it can. */
export function checkUsageReport(
  report: UsageReport,
  allocation: MeteredAllocation | undefined,
  nowMs: number,
  options: MeterOptions = {},
): UsageRejection | undefined {
  if (!allocation || allocation.taskId !== report.taskId) return "unknown-allocation";
  if (report.epoch < allocation.epoch) return "stale-epoch";
  if (report.epoch > allocation.epoch) return "future-epoch";
  if (report.agentId !== allocation.agentId) return "wrong-agent";
  if (report.jobId !== allocation.jobId) return "wrong-job";
  if (report.gpus !== allocation.gpus) return "gpu-count-mismatch";
  const tolerance = options.clockSkewToleranceMs ?? DEFAULT_CLOCK_SKEW_TOLERANCE_MS;
  if (report.untilMs < report.startedAtMs) return "inconsistent-claim";
  if (report.gpuMilliseconds > report.gpus * (report.untilMs - report.startedAtMs)) return "inconsistent-claim";
  if (report.startedAtMs < allocation.placedAtMs - tolerance) return "before-window";
  const windowEnd = allocation.observedEndMs > 0 ? allocation.observedEndMs : nowMs;
  if (report.untilMs > windowEnd + tolerance) return "beyond-window";
  return undefined;
}

export type MeterBasis = "observed-window" | "final-report" | "not-started" | "budget-cap";

export interface MeterResult {
  startMs: number;
  endMs: number;
  billableGpuMs: number;
  /** `costForGpuMillis(price, billableGpuMs)`: rounded half-up to the micro. */
  amount: Micros;
  basis: MeterBasis;
  /** Largest cumulative GPU-ms an accepted report claimed (for cross-checks and audits). */
  claimedGpuMs: number;
  accepted: number;
  rejected: { report: UsageReport; reason: UsageRejection }[];
}

export function meter(
  allocation: MeteredAllocation,
  reports: readonly UsageReport[],
  nowMs: number,
  options: MeterOptions = {},
): MeterResult {
  const rejected: MeterResult["rejected"] = [];
  const accepted: UsageReport[] = [];
  for (const report of reports) {
    const reason = checkUsageReport(report, allocation, nowMs, options);
    if (reason) rejected.push({ report, reason });
    else accepted.push(report);
  }
  const claimedGpuMs = accepted.reduce((max, r) => Math.max(max, r.gpuMilliseconds), 0);
  const base = { claimedGpuMs, accepted: accepted.length, rejected };
  // The scheduler may have missed the RUNNING status (e.g. it restarted); the earliest accepted report then
  // says when the task started, never before its placement.
  const start =
    allocation.startedAtMs > 0
      ? allocation.startedAtMs
      : accepted.length > 0
        ? Math.max(allocation.placedAtMs, Math.min(...accepted.map((r) => r.startedAtMs)))
        : 0;
  if (start === 0) return { ...base, startMs: 0, endMs: 0, billableGpuMs: 0, amount: 0, basis: "not-started" };
  let end = allocation.observedEndMs > 0 ? allocation.observedEndMs : nowMs;
  let basis: MeterBasis = "observed-window";
  const finalUntil = Math.min(...accepted.filter((r) => r.final).map((r) => r.untilMs));
  if (finalUntil < end) {
    end = finalUntil;
    basis = "final-report";
  }
  end = Math.max(start, end);
  let billableGpuMs = allocation.gpus * (end - start);
  let amount = costForGpuMillis(allocation.pricePerGpuHour, billableGpuMs);
  if (options.maxAmount !== undefined && amount > options.maxAmount) {
    billableGpuMs = Math.min(billableGpuMs, maxGpuMillisFor(allocation.pricePerGpuHour, options.maxAmount));
    amount = costForGpuMillis(allocation.pricePerGpuHour, billableGpuMs);
    basis = "budget-cap";
  }
  return { ...base, startMs: start, endMs: end, billableGpuMs, amount, basis };
}

export type JobBudgetStatus = "ok" | "warn-80" | "stop";

/**
 * The running-job budget watcher: "stop" once spend reaches the budget, "warn-80" from 80 % (integer math:
 * spent × 5 ≥ budget × 4), else "ok". A budget of 0 means no cap.
 */
export function jobBudgetStatus(spent: Micros, budget: Micros): JobBudgetStatus {
  if (budget <= 0) return "ok";
  if (spent >= budget) return "stop";
  if (spent * 5 >= budget * 4) return "warn-80";
  return "ok";
}

/**
 * Milliseconds until a job spending `hourly` micros per hour reaches `budget` (0 when already there), so the
 * scheduler can arm a timer instead of waiting for the next usage sample. Undefined when nothing is spent
 * per hour or there is no budget. Rounded up: the stop never comes before the budget is reached.
 */
export function msUntilBudgetReached(spent: Micros, budget: Micros, hourly: Micros): number | undefined {
  if (budget <= 0 || hourly <= 0) return undefined;
  const left = budget - spent;
  if (left <= 0) return 0;
  // bigint: left × 3.6e6 passes 2^53 from about $2,500 left.
  const numerator = BigInt(left) * 3_600_000n;
  const divisor = BigInt(hourly);
  return Number((numerator + divisor - 1n) / divisor);
}
