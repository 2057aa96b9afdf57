/**
 * Market failure modes, one class each. They extend the domain's coded errors so the gRPC edge maps them
 * without knowing the market: budgets → FAILED_PRECONDITION, bad queries → INVALID_ARGUMENT.
 */
import { CapaError, formatUsd, type Micros, NotFoundError, PreconditionError, ValidationError } from "@capa/domain";

export class InvalidMarketQueryError extends ValidationError {}

export class InvalidPriceSpecError extends ValidationError {}

export type BudgetLimitKind = "monthly" | "hourly" | "job";

export interface BudgetNumbers {
  tenant: string;
  jobId: string;
  /** What the submission asked for: a total (monthly, job) or a rate per hour (hourly). */
  requested: Micros;
  /** What was left under the limit when it asked; never negative. */
  available: Micros;
  limit: Micros;
}

/** A reservation that would break a spending limit. The numbers travel with the error for the tenant. */
export abstract class BudgetExceededError extends PreconditionError {
  abstract readonly limitKind: BudgetLimitKind;
  readonly tenant: string;
  readonly jobId: string;
  readonly requested: Micros;
  readonly available: Micros;
  readonly limit: Micros;

  constructor(numbers: BudgetNumbers, what: string, options?: { cause?: unknown }) {
    super(
      `${what} exceeded for tenant ${numbers.tenant}, job ${numbers.jobId}: requested ${formatUsd(numbers.requested)}, ` +
        `available ${formatUsd(numbers.available)} of ${formatUsd(numbers.limit)}`,
      options,
    );
    this.tenant = numbers.tenant;
    this.jobId = numbers.jobId;
    this.requested = numbers.requested;
    this.available = numbers.available;
    this.limit = numbers.limit;
  }
}

/** Settled spend this month plus reservations would pass the tenant's monthly cap. */
export class MonthlyBudgetExceededError extends BudgetExceededError {
  readonly limitKind = "monthly";
  constructor(numbers: BudgetNumbers, options?: { cause?: unknown }) {
    super(numbers, "monthly budget", options);
  }
}

/** The hourly rates of the tenant's admitted jobs would pass the tenant's $/hour cap. */
export class HourlyRateExceededError extends BudgetExceededError {
  readonly limitKind = "hourly";
  constructor(numbers: BudgetNumbers, options?: { cause?: unknown }) {
    super(numbers, "hourly spending rate", options);
  }
}

/** The job's expected cost is above the job's own budget: it would be stopped before it could finish. */
export class JobBudgetExceededError extends BudgetExceededError {
  readonly limitKind = "job";
  constructor(numbers: BudgetNumbers, options?: { cause?: unknown }) {
    super(numbers, "job budget", options);
  }
}

/** Extending or settling a reservation that does not exist. */
export class UnknownReservationError extends NotFoundError {}

/** A stored budget document that does not decode: never guessed at, because money depends on it. */
export class CorruptBudgetStateError extends CapaError {
  readonly code = "INTERNAL";
}
