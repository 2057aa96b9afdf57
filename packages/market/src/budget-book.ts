/**
 * An in-memory book of tenant budgets over the pure transitions in budget.ts: the reference model the unit and
 * property tests check (the scheduler itself never uses it). Production keeps the same documents in JetStream KV
 * and applies the same transitions with CAS (@capa/ledger `BudgetStore`).
 */
import type { Micros } from "@capa/domain";
import {
  applyBudgetOp,
  type BudgetOp,
  type BudgetOutcome,
  type BudgetSummary,
  emptyBudget,
  summarize,
  type TenantBudget,
} from "./budget.js";

export class BudgetBook {
  private readonly tenants = new Map<string, TenantBudget>();

  /** Applies an operation; on a thrown BudgetExceededError the book is unchanged. */
  apply(tenant: string, op: BudgetOp, nowMs: number): BudgetOutcome {
    const outcome = applyBudgetOp(this.tenants.get(tenant), tenant, op, nowMs);
    if (outcome.changed) this.tenants.set(tenant, outcome.state);
    return outcome;
  }

  setLimits(tenant: string, limits: { hourlyCap: Micros; monthlyCap: Micros }, nowMs: number): void {
    this.apply(tenant, { kind: "set-limits", ...limits }, nowMs);
  }

  /** Reserves a job's expected cost; throws a BudgetExceededError subclass carrying the numbers. */
  reserve(
    tenant: string,
    jobId: string,
    expected: { total: Micros; hourly: Micros },
    nowMs: number,
    jobBudget = 0,
  ): BudgetOutcome {
    return this.apply(
      tenant,
      { kind: "reserve", jobId, amount: expected.total, hourly: expected.hourly, jobBudget },
      nowMs,
    );
  }

  /** Grows the reservation by `amount`; with `hourly`, also sets its rate (see the "extend" op). */
  extend(tenant: string, jobId: string, amount: Micros, nowMs: number, hourly?: Micros): BudgetOutcome {
    return this.apply(tenant, { kind: "extend", jobId, amount, ...(hourly === undefined ? {} : { hourly }) }, nowMs);
  }

  release(tenant: string, jobId: string, nowMs: number): BudgetOutcome {
    return this.apply(tenant, { kind: "release", jobId }, nowMs);
  }

  settle(tenant: string, jobId: string, actual: Micros, nowMs: number): BudgetOutcome {
    return this.apply(tenant, { kind: "settle", jobId, actual }, nowMs);
  }

  state(tenant: string, nowMs: number): TenantBudget {
    return this.tenants.get(tenant) ?? emptyBudget(tenant, nowMs);
  }

  summary(tenant: string, nowMs: number): BudgetSummary {
    return summarize(this.state(tenant, nowMs), nowMs);
  }
}
