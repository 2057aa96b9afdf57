/**
 * Tenant budgets as pure state transitions. One `TenantBudget` document per tenant holds its limits, this
 * month's settled spend and the reservations of its admitted, unfinished jobs.
 *
 * Invariant (per tenant, when a monthly cap is set): settled + Σ reservations ≤ monthlyCap, and (with an hourly
 * cap) Σ reservation hourly rates ≤ hourlyCap. `reserve` and `extend` refuse what would break it; `release`
 * and `settle` only lower the left side, provided a job never settles above its reservation. The scheduler
 * guarantees that by stopping a job when its spend reaches its reservation (`jobBudgetStatus`) unless an
 * `extend` succeeds first. An overrun (metering granularity) is still recorded, because the ledger is the truth,
 * and reported in the outcome. Lowering a cap below current use is allowed: it only refuses new reservations.
 *
 * Durability: the scheduler keeps each document in a KV key per tenant and applies operations with CAS
 * (`TypedKv.mutate(key, (cur) => applyBudgetOp(cur, tenant, op, now).changed ? ... : undefined)`); concurrent
 * admissions then serialize through the KV revision, and each retry re-evaluates against the latest state.
 */
import { assertMicros, type Micros, ValidationError } from "@capa/domain";
import {
  CorruptBudgetStateError,
  HourlyRateExceededError,
  JobBudgetExceededError,
  MonthlyBudgetExceededError,
  UnknownReservationError,
} from "./errors.js";

export interface TenantLimits {
  /** Most the tenant's admitted jobs may cost per hour together; 0 = no cap. */
  hourlyCap: Micros;
  /** Most the tenant may spend (settled + reserved) per calendar month, UTC; 0 = no cap. */
  monthlyCap: Micros;
  /** When a `set-limits` last changed them; 0 = never. */
  updatedAtMs: number;
  /** Who made that change (its actor); absent on documents written before it was recorded, and before any. */
  updatedBy?: string;
}

export interface Reservation {
  jobId: string;
  amount: Micros;
  /** The job's spending rate, counted against the hourly cap. */
  hourly: Micros;
  reservedAtMs: number;
}

export interface TenantBudget {
  tenant: string;
  limits: TenantLimits;
  /** "YYYY-MM" (UTC) that `settled` belongs to. */
  month: string;
  settled: Micros;
  /** Sorted by jobId, so equal states encode to equal bytes. */
  reservations: Reservation[];
}

export type BudgetOp =
  | { kind: "reserve"; jobId: string; amount: Micros; hourly: Micros; jobBudget?: Micros }
  /**
   * Grows the reservation by `amount` and, with `hourly`, raises its rate to the job's actual running rate when
   * that is higher (the budget watch refreshes it whenever the job's placed tasks change, so a job admitted at
   * rate 0, or placed on a dearer offer than quoted, is counted at what it really costs). The rate is never
   * lowered here: a job running below its admitted rate (partly placed, preempted) keeps the rate it was
   * admitted with, so its tasks can come back without asking the hourly cap again; it is released at settle.
   * A larger amount is checked against the monthly cap, a higher rate against the hourly cap.
   */
  | { kind: "extend"; jobId: string; amount: Micros; hourly?: Micros }
  /** With `ifReservedAtMs`: only the reservation made at that instant (the reconcile pass's guard). */
  | { kind: "release"; jobId: string; ifReservedAtMs?: number }
  | { kind: "settle"; jobId: string; actual: Micros }
  /**
   * Adds to this month's settled spend what a job already settled was charged afterwards (an allocation that
   * ended after its settlement: the reservation is gone, its late charge still counts against the cap).
   */
  | { kind: "settle-late"; jobId: string; amount: Micros }
  /**
   * Changes only the caps given (a cap left undefined keeps its stored value, so two partial updates of
   * different caps both survive the CAS retry of the loser) and records who and when.
   */
  | { kind: "set-limits"; hourlyCap?: Micros; monthlyCap?: Micros; updatedBy?: string };

export interface BudgetOutcome {
  /** False when the operation was a no-op (a retried reserve, a release or settle of an unknown job). */
  changed: boolean;
  state: TenantBudget;
  /** settle only: how far the actual spend went past the reservation (0 normally). */
  overrun: Micros;
}

export interface BudgetSummary {
  month: string;
  settled: Micros;
  reserved: Micros;
  /** monthlyCap − settled − reserved, never negative; undefined when there is no monthly cap. */
  available: Micros | undefined;
  hourlyCommitted: Micros;
  limits: TenantLimits;
}

export const NO_LIMITS: TenantLimits = { hourlyCap: 0, monthlyCap: 0, updatedAtMs: 0 };

/** Calendar month (UTC) of an instant, "YYYY-MM". Pure: derived from the injected clock value. */
export function monthOf(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

export function emptyBudget(tenant: string, nowMs: number): TenantBudget {
  return { tenant, limits: NO_LIMITS, month: monthOf(nowMs), settled: 0, reservations: [] };
}

export function summarize(state: TenantBudget, nowMs: number): BudgetSummary {
  const rolled = rollMonth(state, nowMs);
  const reserved = sum(rolled.reservations.map((r) => r.amount));
  const cap = rolled.limits.monthlyCap;
  return {
    month: rolled.month,
    settled: rolled.settled,
    reserved,
    available: cap > 0 ? Math.max(0, cap - rolled.settled - reserved) : undefined,
    hourlyCommitted: sum(rolled.reservations.map((r) => r.hourly)),
    limits: rolled.limits,
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** A new month starts with nothing settled; reservations carry over. The clock never rolls a month back. */
function rollMonth(state: TenantBudget, nowMs: number): TenantBudget {
  const month = monthOf(nowMs);
  return month > state.month ? { ...state, month, settled: 0 } : state;
}

function checkAmount(value: number, field: string): void {
  try {
    assertMicros(value, field);
  } catch (cause) {
    throw new ValidationError([{ field, message: (cause as Error).message }]);
  }
  if (value < 0) throw new ValidationError([{ field, message: `must not be negative, got ${value}` }]);
}

function withoutJob(state: TenantBudget, jobId: string): Reservation[] {
  return state.reservations.filter((r) => r.jobId !== jobId);
}

function insertSorted(list: Reservation[], reservation: Reservation): Reservation[] {
  return [...list, reservation].sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
}

/**
 * Refuses an amount and rate that, next to `others`, would break a cap. `check` limits the test to what grows
 * (an extension never fails on a cap lowered below what it already held).
 */
function checkCaps(
  state: TenantBudget,
  others: Reservation[],
  jobId: string,
  amount: Micros,
  hourly: Micros,
  check: { monthly: boolean; hourly: boolean } = { monthly: true, hourly: true },
): void {
  const { monthlyCap, hourlyCap } = state.limits;
  const used = state.settled + sum(others.map((r) => r.amount));
  if (check.monthly && monthlyCap > 0 && used + amount > monthlyCap) {
    const available = Math.max(0, monthlyCap - used);
    throw new MonthlyBudgetExceededError({
      tenant: state.tenant,
      jobId,
      requested: amount,
      available,
      limit: monthlyCap,
    });
  }
  const committed = sum(others.map((r) => r.hourly));
  if (check.hourly && hourlyCap > 0 && committed + hourly > hourlyCap) {
    const available = Math.max(0, hourlyCap - committed);
    throw new HourlyRateExceededError({ tenant: state.tenant, jobId, requested: hourly, available, limit: hourlyCap });
  }
}

/**
 * Applies one operation to a tenant's budget. Pure and deterministic; throws a BudgetExceededError subclass
 * when a reservation would break a limit, UnknownReservationError when extending a job that holds none.
 */
export function applyBudgetOp(
  current: TenantBudget | undefined,
  tenant: string,
  op: BudgetOp,
  nowMs: number,
): BudgetOutcome {
  const state = rollMonth(current ?? emptyBudget(tenant, nowMs), nowMs);
  // A no-op needs no write: a month roll-over alone is re-derived from the clock on every read.
  const same = (): BudgetOutcome => ({ changed: false, state, overrun: 0 });
  switch (op.kind) {
    case "reserve": {
      checkAmount(op.amount, "amount");
      checkAmount(op.hourly, "hourly");
      const existing = state.reservations.find((r) => r.jobId === op.jobId);
      // A retried admission (same job, same numbers) is a no-op, so a client retry never double-reserves.
      if (existing && existing.amount === op.amount && existing.hourly === op.hourly) return same();
      const jobBudget = op.jobBudget ?? 0;
      if (jobBudget > 0 && op.amount > jobBudget) {
        throw new JobBudgetExceededError({
          tenant,
          jobId: op.jobId,
          requested: op.amount,
          available: jobBudget,
          limit: jobBudget,
        });
      }
      const others = withoutJob(state, op.jobId);
      checkCaps(state, others, op.jobId, op.amount, op.hourly);
      const reservation = { jobId: op.jobId, amount: op.amount, hourly: op.hourly, reservedAtMs: nowMs };
      return { changed: true, state: { ...state, reservations: insertSorted(others, reservation) }, overrun: 0 };
    }
    case "extend": {
      checkAmount(op.amount, "amount");
      if (op.hourly !== undefined) checkAmount(op.hourly, "hourly");
      const existing = state.reservations.find((r) => r.jobId === op.jobId);
      if (!existing) throw new UnknownReservationError(`tenant ${tenant} holds no reservation for job ${op.jobId}`);
      const hourly = Math.max(existing.hourly, op.hourly ?? 0);
      if (op.amount === 0 && hourly === existing.hourly) return same();
      const others = withoutJob(state, op.jobId);
      const amount = existing.amount + op.amount;
      checkCaps(state, others, op.jobId, amount, hourly, { monthly: op.amount > 0, hourly: hourly > existing.hourly });
      const grown = { ...existing, amount, hourly };
      return { changed: true, state: { ...state, reservations: insertSorted(others, grown) }, overrun: 0 };
    }
    case "release": {
      const existing = state.reservations.find((r) => r.jobId === op.jobId);
      if (!existing) return same();
      if (op.ifReservedAtMs !== undefined && existing.reservedAtMs !== op.ifReservedAtMs) return same();
      return { changed: true, state: { ...state, reservations: withoutJob(state, op.jobId) }, overrun: 0 };
    }
    case "settle": {
      checkAmount(op.actual, "actual");
      const existing = state.reservations.find((r) => r.jobId === op.jobId);
      // Settling twice (a replay after a restart) finds no reservation the second time: a no-op, not a charge.
      if (!existing) return same();
      return {
        changed: true,
        state: { ...state, settled: state.settled + op.actual, reservations: withoutJob(state, op.jobId) },
        overrun: Math.max(0, op.actual - existing.amount),
      };
    }
    case "settle-late": {
      checkAmount(op.amount, "amount");
      if (op.amount === 0) return same();
      return { changed: true, state: { ...state, settled: state.settled + op.amount }, overrun: 0 };
    }
    case "set-limits": {
      if (op.hourlyCap === undefined && op.monthlyCap === undefined) {
        throw new ValidationError([{ field: "limits", message: "name at least one cap to change" }]);
      }
      if (op.hourlyCap !== undefined) checkAmount(op.hourlyCap, "hourly_cap_micros");
      if (op.monthlyCap !== undefined) checkAmount(op.monthlyCap, "monthly_cap_micros");
      const limits: TenantLimits = {
        hourlyCap: op.hourlyCap ?? state.limits.hourlyCap,
        monthlyCap: op.monthlyCap ?? state.limits.monthlyCap,
        updatedAtMs: nowMs,
        ...(op.updatedBy === undefined ? {} : { updatedBy: op.updatedBy }),
      };
      return { changed: true, state: { ...state, limits }, overrun: 0 };
    }
  }
}

/** The reserve step alone, as the scheduler's admission calls it. */
export function applyReservation(
  current: TenantBudget | undefined,
  tenant: string,
  jobId: string,
  expected: { total: Micros; hourly: Micros },
  nowMs: number,
  jobBudget = 0,
): BudgetOutcome {
  return applyBudgetOp(
    current,
    tenant,
    { kind: "reserve", jobId, amount: expected.total, hourly: expected.hourly, jobBudget },
    nowMs,
  );
}

/**
 * What admission reserves for a job, from its quote: the expected total when the spec has an expected
 * duration; else the job's own budget (it can never spend more); else one hour at the expected rate, which
 * the scheduler extends hour by hour while the job runs.
 */
export function admissionReservation(
  spec: { expectedDurationSeconds: number; budget: Micros },
  expected: { total: Micros; hourly: Micros },
): { total: Micros; hourly: Micros } {
  if (spec.expectedDurationSeconds > 0) return expected;
  if (spec.budget > 0) return { total: spec.budget, hourly: expected.hourly };
  return { total: expected.hourly, hourly: expected.hourly };
}

const BUDGET_FORMAT = 1;

export function encodeTenantBudget(state: TenantBudget): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: BUDGET_FORMAT, ...state }));
}

export function decodeTenantBudget(bytes: Uint8Array): TenantBudget {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new CorruptBudgetStateError("tenant budget is not JSON", { cause });
  }
  const doc = raw as Partial<TenantBudget> & { v?: number };
  const isInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const ok =
    doc?.v === BUDGET_FORMAT &&
    typeof doc.tenant === "string" &&
    typeof doc.month === "string" &&
    isInt(doc.settled) &&
    isInt(doc.limits?.hourlyCap) &&
    isInt(doc.limits?.monthlyCap) &&
    (doc.limits?.updatedBy === undefined || typeof doc.limits.updatedBy === "string") &&
    Array.isArray(doc.reservations) &&
    doc.reservations.every((r) => typeof r?.jobId === "string" && isInt(r.amount) && isInt(r.hourly));
  if (!ok) throw new CorruptBudgetStateError(`tenant budget document has an unexpected shape (format ${doc?.v})`);
  return {
    tenant: doc.tenant!,
    limits: { ...doc.limits! },
    month: doc.month!,
    settled: doc.settled!,
    reservations: doc.reservations!.map((r) => ({ ...r })),
  };
}
