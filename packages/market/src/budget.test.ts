import { ValidationError } from "@capa/domain";
import { describe, expect, it } from "vitest";
import {
  admissionReservation,
  applyBudgetOp,
  applyReservation,
  decodeTenantBudget,
  encodeTenantBudget,
  monthOf,
} from "./budget.js";
import { BudgetBook } from "./budget-book.js";
import {
  BudgetExceededError,
  CorruptBudgetStateError,
  HourlyRateExceededError,
  JobBudgetExceededError,
  MonthlyBudgetExceededError,
  UnknownReservationError,
} from "./errors.js";
import { usd } from "./testing/fixtures.js";

const JAN = Date.UTC(2025, 0, 15);
const FEB = Date.UTC(2025, 1, 1);

function book(monthly: string, hourly = "0") {
  const b = new BudgetBook();
  b.setLimits("acme", { monthlyCap: usd(monthly), hourlyCap: usd(hourly) }, JAN);
  return b;
}

describe("BudgetBook reservations", () => {
  it("refuses a reservation past the monthly cap with the numbers", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("70"), hourly: usd("7") }, JAN);
    let error: unknown;
    try {
      b.reserve("acme", "j2", { total: usd("40"), hourly: usd("4") }, JAN);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MonthlyBudgetExceededError);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error).toMatchObject({
      code: "FAILED_PRECONDITION",
      limitKind: "monthly",
      tenant: "acme",
      jobId: "j2",
      requested: usd("40"),
      available: usd("30"),
      limit: usd("100"),
    });
    expect((error as Error).message).toBe(
      "monthly budget exceeded for tenant acme, job j2: requested $40.00, available $30.00 of $100.00",
    );
    expect(b.summary("acme", JAN)).toMatchObject({ reserved: usd("70"), available: usd("30") });
  });

  it("admits exactly up to the cap", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("60"), hourly: 0 }, JAN);
    b.reserve("acme", "j2", { total: usd("40"), hourly: 0 }, JAN);
    expect(b.summary("acme", JAN).available).toBe(0);
  });

  it("refuses a job whose hourly rate would pass the tenant's $/hour cap", () => {
    const b = book("0", "10");
    b.reserve("acme", "j1", { total: usd("1"), hourly: usd("6") }, JAN);
    expect(() => b.reserve("acme", "j2", { total: usd("1"), hourly: usd("5") }, JAN)).toThrow(HourlyRateExceededError);
    expect(() => b.reserve("acme", "j2", { total: usd("1"), hourly: usd("5") }, JAN)).toThrow(
      /requested \$5.00, available \$4.00 of \$10.00/,
    );
  });

  it("refuses a job whose expected cost is above its own budget", () => {
    const b = new BudgetBook();
    expect(() => b.reserve("acme", "j1", { total: usd("12"), hourly: usd("1") }, JAN, usd("10"))).toThrow(
      JobBudgetExceededError,
    );
  });

  it("treats a retried reservation with the same numbers as a no-op", () => {
    const b = book("100");
    expect(b.reserve("acme", "j1", { total: usd("60"), hourly: 0 }, JAN).changed).toBe(true);
    expect(b.reserve("acme", "j1", { total: usd("60"), hourly: 0 }, JAN).changed).toBe(false);
    expect(b.summary("acme", JAN).reserved).toBe(usd("60"));
  });

  it("re-reserving a job replaces its reservation instead of adding to it", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("60"), hourly: 0 }, JAN);
    b.reserve("acme", "j1", { total: usd("90"), hourly: 0 }, JAN);
    expect(b.summary("acme", JAN).reserved).toBe(usd("90"));
  });

  it("release frees the reservation; releasing again changes nothing", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("60"), hourly: usd("2") }, JAN);
    expect(b.release("acme", "j1", JAN).changed).toBe(true);
    expect(b.release("acme", "j1", JAN).changed).toBe(false);
    expect(b.summary("acme", JAN)).toMatchObject({ reserved: 0, hourlyCommitted: 0, available: usd("100") });
  });

  it("settle replaces the reservation by the actual spend, once", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("60"), hourly: 0 }, JAN);
    expect(b.settle("acme", "j1", usd("45.5"), JAN)).toMatchObject({ changed: true, overrun: 0 });
    expect(b.settle("acme", "j1", usd("45.5"), JAN).changed).toBe(false);
    expect(b.summary("acme", JAN)).toMatchObject({ settled: usd("45.5"), reserved: 0, available: usd("54.5") });
  });

  it("records an overrun past the reservation, because the ledger is the truth", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("10"), hourly: 0 }, JAN);
    expect(b.settle("acme", "j1", usd("10.25"), JAN).overrun).toBe(usd("0.25"));
    expect(b.summary("acme", JAN).settled).toBe(usd("10.25"));
  });

  it("extend grows a running job's reservation within the cap, and refuses past it", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("50"), hourly: 0 }, JAN);
    b.extend("acme", "j1", usd("30"), JAN);
    expect(() => b.extend("acme", "j1", usd("30"), JAN)).toThrow(MonthlyBudgetExceededError);
    expect(b.summary("acme", JAN).reserved).toBe(usd("80"));
    expect(() => b.extend("acme", "nope", 1, JAN)).toThrow(UnknownReservationError);
  });

  it("extend refreshes a reservation's rate to the running rate, checked against the hourly cap", () => {
    const b = new BudgetBook();
    b.setLimits("acme", { monthlyCap: 0, hourlyCap: usd("5") }, JAN);
    // admitted while nothing matched and without a max price: rate 0
    b.reserve("acme", "j1", { total: 0, hourly: 0 }, JAN);
    b.reserve("acme", "j2", { total: 0, hourly: usd("2") }, JAN);
    expect(b.extend("acme", "j1", 0, JAN, usd("3")).changed).toBe(true);
    expect(b.summary("acme", JAN).hourlyCommitted).toBe(usd("5"));
    expect(b.extend("acme", "j1", 0, JAN, usd("3")).changed).toBe(false); // same rate: nothing to write
    // placed on a dearer offer than quoted: refused, numbers name the hourly cap
    let refused: unknown;
    try {
      b.extend("acme", "j2", 0, JAN, usd("2.5"));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(HourlyRateExceededError);
    expect(refused).toMatchObject({ requested: usd("2.5"), available: usd("2"), limit: usd("5") });
    expect(b.summary("acme", JAN).hourlyCommitted).toBe(usd("5"));
    // the cap lowered below what is held: keeping (or not raising) a rate is still allowed, raising is not
    b.setLimits("acme", { monthlyCap: 0, hourlyCap: usd("1") }, JAN);
    expect(b.extend("acme", "j1", 0, JAN, usd("3")).changed).toBe(false);
    expect(() => b.extend("acme", "j1", 0, JAN, usd("3.01"))).toThrow(HourlyRateExceededError);
  });

  it("extend never lowers a reservation's rate: a job running below it keeps the room it was admitted with", () => {
    const b = new BudgetBook();
    b.setLimits("acme", { monthlyCap: 0, hourlyCap: usd("10") }, JAN);
    b.reserve("acme", "j1", { total: 0, hourly: usd("8") }, JAN); // admitted for 2 tasks at $4/h
    // one task placed (or one preempted): the running rate is $4/h, the reservation keeps $8/h
    expect(b.extend("acme", "j1", 0, JAN, usd("4")).changed).toBe(false);
    expect(b.summary("acme", JAN).hourlyCommitted).toBe(usd("8"));
    expect(() => b.reserve("acme", "j2", { total: 0, hourly: usd("6") }, JAN)).toThrow(HourlyRateExceededError);
    // both tasks run again: nothing to ask
    expect(b.extend("acme", "j1", 0, JAN, usd("8")).changed).toBe(false);
    // the rate goes only down at settle
    b.settle("acme", "j1", 0, JAN);
    expect(b.summary("acme", JAN).hourlyCommitted).toBe(0);
  });

  it("settle-late adds a settled job's late charge to the month, without a reservation", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("10"), hourly: 0 }, JAN);
    b.settle("acme", "j1", usd("3"), JAN);
    expect(b.apply("acme", { kind: "settle-late", jobId: "j1", amount: usd("2") }, JAN).changed).toBe(true);
    expect(b.apply("acme", { kind: "settle-late", jobId: "j1", amount: 0 }, JAN).changed).toBe(false);
    expect(b.summary("acme", JAN)).toMatchObject({ settled: usd("5"), reserved: 0 });
  });

  it("starts a new month with nothing settled but keeps open reservations", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("30"), hourly: 0 }, JAN);
    b.reserve("acme", "j2", { total: usd("50"), hourly: 0 }, JAN);
    b.settle("acme", "j2", usd("50"), JAN);
    expect(b.summary("acme", FEB)).toMatchObject({
      month: "2025-02",
      settled: 0,
      reserved: usd("30"),
      available: usd("70"),
    });
    expect(b.reserve("acme", "j3", { total: usd("70"), hourly: 0 }, FEB).state.month).toBe("2025-02");
  });

  it("lowering a cap below current use refuses new reservations but keeps existing ones", () => {
    const b = book("100");
    b.reserve("acme", "j1", { total: usd("80"), hourly: 0 }, JAN);
    b.setLimits("acme", { monthlyCap: usd("50"), hourlyCap: 0 }, JAN);
    expect(() => b.reserve("acme", "j2", { total: 1, hourly: 0 }, JAN)).toThrow(/available \$0.00 of \$50.00/);
    expect(b.summary("acme", JAN).reserved).toBe(usd("80"));
  });

  it("rejects negative or fractional amounts as invalid arguments", () => {
    const b = new BudgetBook();
    expect(() => b.reserve("acme", "j1", { total: -1, hourly: 0 }, JAN)).toThrow(ValidationError);
    expect(() => b.reserve("acme", "j1", { total: 1.5, hourly: 0 }, JAN)).toThrow(/amount/);
  });

  it("has no limits and no reservations for an unknown tenant", () => {
    expect(new BudgetBook().summary("ghost", JAN)).toEqual({
      month: "2025-01",
      settled: 0,
      reserved: 0,
      available: undefined,
      hourlyCommitted: 0,
      limits: { hourlyCap: 0, monthlyCap: 0, updatedAtMs: 0 },
    });
  });
});

describe("pure transitions and their encoding", () => {
  it("never mutates the state it is given", () => {
    const first = applyReservation(undefined, "acme", "j1", { total: 5, hourly: 1 }, JAN).state;
    const frozen = structuredClone(first);
    applyBudgetOp(first, "acme", { kind: "settle", jobId: "j1", actual: 5 }, JAN);
    expect(first).toEqual(frozen);
  });

  it("round-trips through the KV encoding, and equal states encode to equal bytes", () => {
    const a = applyReservation(undefined, "acme", "b", { total: 5, hourly: 1 }, JAN).state;
    const ab = applyReservation(a, "acme", "a", { total: 7, hourly: 2 }, JAN).state;
    const b = applyReservation(undefined, "acme", "a", { total: 7, hourly: 2 }, JAN).state;
    const ba = applyReservation(b, "acme", "b", { total: 5, hourly: 1 }, JAN).state;
    expect(decodeTenantBudget(encodeTenantBudget(ab))).toEqual(ab);
    expect(encodeTenantBudget(ab)).toEqual(encodeTenantBudget(ba));
  });

  it("refuses to decode a document of another shape instead of guessing", () => {
    expect(() => decodeTenantBudget(new TextEncoder().encode("{}"))).toThrow(CorruptBudgetStateError);
    expect(() => decodeTenantBudget(new TextEncoder().encode("not json"))).toThrow(CorruptBudgetStateError);
  });

  it("set-limits changes only the caps given and records who and when", () => {
    const hourly = applyBudgetOp(
      undefined,
      "acme",
      { kind: "set-limits", hourlyCap: usd("10"), updatedBy: "alice" },
      JAN,
    ).state;
    expect(hourly.limits).toEqual({ hourlyCap: usd("10"), monthlyCap: 0, updatedAtMs: JAN, updatedBy: "alice" });
    // A partial update of the other cap, applied on top (as the loser of a CAS race re-applies it): both survive.
    const both = applyBudgetOp(
      hourly,
      "acme",
      { kind: "set-limits", monthlyCap: usd("500"), updatedBy: "bob" },
      JAN + 1,
    ).state;
    expect(both.limits).toEqual({
      hourlyCap: usd("10"),
      monthlyCap: usd("500"),
      updatedAtMs: JAN + 1,
      updatedBy: "bob",
    });
    // 0 removes a cap; a change with no actor records no one rather than keeping the previous name.
    const removed = applyBudgetOp(both, "acme", { kind: "set-limits", hourlyCap: 0 }, JAN + 2).state;
    expect(removed.limits).toEqual({ hourlyCap: 0, monthlyCap: usd("500"), updatedAtMs: JAN + 2 });
    expect(decodeTenantBudget(encodeTenantBudget(both))).toEqual(both);
  });

  it("refuses a set-limits that names no cap, or a bad one", () => {
    expect(() => applyBudgetOp(undefined, "acme", { kind: "set-limits", updatedBy: "alice" }, JAN)).toThrow(
      ValidationError,
    );
    expect(() => applyBudgetOp(undefined, "acme", { kind: "set-limits", monthlyCap: -1 }, JAN)).toThrow(
      /monthly_cap_micros/,
    );
  });

  it("decodes a document written before the actor was recorded", () => {
    const old = new TextEncoder().encode(
      JSON.stringify({
        v: 1,
        tenant: "acme",
        limits: { hourlyCap: 5, monthlyCap: 7, updatedAtMs: JAN },
        month: "2025-01",
        settled: 0,
        reservations: [],
      }),
    );
    expect(decodeTenantBudget(old).limits).toEqual({ hourlyCap: 5, monthlyCap: 7, updatedAtMs: JAN });
  });

  it("names months in UTC", () => {
    expect(monthOf(Date.UTC(2024, 11, 31, 23, 59))).toBe("2024-12");
    expect(monthOf(Date.UTC(2025, 0, 1, 0, 0))).toBe("2025-01");
  });
});

describe("admissionReservation", () => {
  it.each([
    [
      "expected duration known: the expected total",
      { expectedDurationSeconds: 60, budget: 900 },
      { total: 50, hourly: 3000 },
    ],
    [
      "no duration, a job budget: the budget",
      { expectedDurationSeconds: 0, budget: 900 },
      { total: 900, hourly: 3000 },
    ],
    [
      "neither: one hour at the expected rate",
      { expectedDurationSeconds: 0, budget: 0 },
      { total: 3000, hourly: 3000 },
    ],
  ])("%s", (_name, spec, expected) => {
    expect(admissionReservation(spec, { total: 50, hourly: 3000 })).toEqual(expected);
  });
});
