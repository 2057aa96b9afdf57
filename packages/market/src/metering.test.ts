import type { UsageReport } from "@capa/domain";
import { costForGpuMillis } from "@capa/domain";
import { describe, expect, it } from "vitest";
import {
  checkUsageReport,
  jobBudgetStatus,
  type MeteredAllocation,
  maxGpuMillisFor,
  meter,
  msUntilBudgetReached,
} from "./metering.js";
import { usd } from "./testing/fixtures.js";

const T0 = 1_700_000_000_000;
const ALLOC: MeteredAllocation = {
  taskId: "j1-0",
  jobId: "j1",
  agentId: "a1",
  epoch: 3,
  gpus: 2,
  pricePerGpuHour: usd("2.49"),
  placedAtMs: T0,
  startedAtMs: T0 + 1_000,
  observedEndMs: T0 + 61_000,
};

function report(overrides: Partial<UsageReport> = {}): UsageReport {
  const startedAtMs = overrides.startedAtMs ?? T0 + 900;
  const untilMs = overrides.untilMs ?? T0 + 30_900;
  return {
    taskId: "j1-0",
    jobId: "j1",
    agentId: "a1",
    epoch: 3,
    startedAtMs,
    untilMs,
    gpus: 2,
    gpuMilliseconds: 2 * (untilMs - startedAtMs),
    final: false,
    sequence: 1,
    ...overrides,
  };
}

describe("checkUsageReport rejects, by name", () => {
  it.each([
    ["no allocation known", report(), undefined, "unknown-allocation"],
    ["another task", report({ taskId: "j1-1" }), ALLOC, "unknown-allocation"],
    ["an older epoch", report({ epoch: 2 }), ALLOC, "stale-epoch"],
    ["a newer epoch", report({ epoch: 4 }), ALLOC, "future-epoch"],
    ["another agent", report({ agentId: "a2" }), ALLOC, "wrong-agent"],
    ["another job", report({ jobId: "j2" }), ALLOC, "wrong-job"],
    ["a different GPU count", report({ gpus: 1, gpuMilliseconds: 1000 }), ALLOC, "gpu-count-mismatch"],
    ["more GPU time than GPUs × window", report({ gpuMilliseconds: 2 * 30_000 + 1 }), ALLOC, "inconsistent-claim"],
    [
      "a window ending before it starts",
      report({ startedAtMs: T0 + 5_000, untilMs: T0 + 4_000, gpuMilliseconds: 0 }),
      ALLOC,
      "inconsistent-claim",
    ],
    ["a start well before placement", report({ startedAtMs: T0 - 6_000 }), ALLOC, "before-window"],
    ["time past the observed end", report({ untilMs: T0 + 61_000 + 5_001 }), ALLOC, "beyond-window"],
  ] as const)("%s → %s", (_name, r, allocation, reason) => {
    expect(checkUsageReport(r, allocation, T0 + 100_000)).toBe(reason);
  });

  it("accepts reports within the clock-skew tolerance", () => {
    expect(checkUsageReport(report({ untilMs: T0 + 66_000 }), ALLOC, T0 + 100_000)).toBeUndefined();
    expect(checkUsageReport(report({ startedAtMs: T0 - 5_000 }), ALLOC, T0 + 100_000)).toBeUndefined();
  });

  it("bounds a running allocation's window by now", () => {
    const running = { ...ALLOC, observedEndMs: 0 };
    expect(checkUsageReport(report({ untilMs: T0 + 40_000 }), running, T0 + 30_000)).toBe("beyond-window");
  });
});

describe("meter bills the scheduler's observed window", () => {
  it("charges price × GPUs × observed time, whatever the agent claims beyond it", () => {
    // 2 GPUs × 60 s at $2.49/GPU-h = 2.49 × 120 / 3600 = $0.083 exactly
    const greedy = report({ startedAtMs: T0 + 1_000, untilMs: T0 + 66_000, final: true, gpuMilliseconds: 130_000 });
    const m = meter(ALLOC, [report(), greedy], T0 + 100_000);
    expect(m).toMatchObject({
      startMs: T0 + 1_000,
      endMs: T0 + 61_000,
      billableGpuMs: 120_000,
      amount: usd("0.083"),
      basis: "observed-window",
      accepted: 2,
      claimedGpuMs: 130_000,
    });
  });

  it("caps the charge at maxAmount by cutting the billable GPU time, keeping the observed window", () => {
    // uncapped: $0.083 (above); what is left of the job's budget: $0.05
    const m = meter(ALLOC, [report()], T0 + 100_000, { maxAmount: usd("0.05") });
    expect(m).toMatchObject({ startMs: T0 + 1_000, endMs: T0 + 61_000, basis: "budget-cap" });
    expect(m.amount).toBeLessThanOrEqual(usd("0.05"));
    expect(m.amount).toBe(costForGpuMillis(ALLOC.pricePerGpuHour, m.billableGpuMs)); // receipt arithmetic holds
    // the most GPU time that fits: one more millisecond would cost more than the cap
    expect(costForGpuMillis(ALLOC.pricePerGpuHour, m.billableGpuMs + 1)).toBeGreaterThan(usd("0.05"));
    // a cap above the bill changes nothing; a cap of 0 bills nothing
    expect(meter(ALLOC, [report()], T0 + 100_000, { maxAmount: usd("1") })).toMatchObject({
      amount: usd("0.083"),
      basis: "observed-window",
    });
    expect(meter(ALLOC, [report()], T0 + 100_000, { maxAmount: 0 })).toMatchObject({ amount: 0, basis: "budget-cap" });
  });

  it("maxGpuMillisFor is exact under half-up rounding", () => {
    for (const [price, amount] of [
      [usd("2.49"), 7],
      [1, 0],
      [1, 5],
      [usd("3.5"), usd("0.002")],
      [7_200_001, 3],
    ] as const) {
      const g = maxGpuMillisFor(price, amount);
      expect(costForGpuMillis(price, g)).toBeLessThanOrEqual(amount);
      expect(costForGpuMillis(price, g + 1)).toBeGreaterThan(amount);
    }
  });

  it("ends at a final report that saw the exit before the scheduler did", () => {
    const final = report({ startedAtMs: T0 + 1_000, untilMs: T0 + 31_000, final: true });
    expect(meter(ALLOC, [final], T0 + 100_000)).toMatchObject({
      endMs: T0 + 31_000,
      billableGpuMs: 60_000,
      basis: "final-report",
    });
  });

  it("gives the same bill when reports are replayed, because they are cumulative (max, not sum)", () => {
    const reports = [report({ sequence: 1 }), report({ sequence: 2, untilMs: T0 + 60_900 })];
    const once = meter(ALLOC, reports, T0 + 100_000);
    const replayed = meter(ALLOC, [...reports, ...reports, ...reports], T0 + 100_000);
    expect(replayed.amount).toBe(once.amount);
    expect(replayed.billableGpuMs).toBe(once.billableGpuMs);
  });

  it("ignores rejected reports and lists them with their reasons", () => {
    const m = meter(ALLOC, [report({ epoch: 2 }), report({ agentId: "evil" })], T0 + 100_000);
    expect(m.rejected.map((r) => r.reason)).toEqual(["stale-epoch", "wrong-agent"]);
    expect(m.billableGpuMs).toBe(120_000);
  });

  it("accrues a running allocation up to now", () => {
    const m = meter({ ...ALLOC, observedEndMs: 0 }, [], T0 + 11_000);
    expect(m).toMatchObject({ billableGpuMs: 20_000, endMs: T0 + 11_000 });
  });

  it("bills a preempted interruptible allocation only for the time it ran", () => {
    const preempted = { ...ALLOC, gpus: 1, pricePerGpuHour: usd("1.20"), observedEndMs: T0 + 1_000 + 90_000 };
    expect(meter(preempted, [], T0 + 500_000)).toMatchObject({ billableGpuMs: 90_000, amount: usd("0.03") });
  });

  it("starts from the earliest accepted report when the scheduler missed the running status", () => {
    const unseen = { ...ALLOC, startedAtMs: 0 };
    const m = meter(unseen, [report({ startedAtMs: T0 + 2_000, untilMs: T0 + 32_000 })], T0 + 100_000);
    expect(m).toMatchObject({ startMs: T0 + 2_000, billableGpuMs: 2 * 59_000 });
  });

  it("bills nothing for an allocation that never started", () => {
    expect(meter({ ...ALLOC, startedAtMs: 0 }, [], T0 + 100_000)).toMatchObject({ amount: 0, basis: "not-started" });
  });

  it("uses the price locked on the allocation", () => {
    const m = meter({ ...ALLOC, pricePerGpuHour: usd("3.60") }, [], T0 + 100_000);
    expect(m.amount).toBe(usd("0.12"));
  });
});

describe("job budget watcher", () => {
  it.each([
    [0, 0, "ok"],
    [999_999, 0, "ok"],
    [79, 100, "ok"],
    [80, 100, "warn-80"],
    [99, 100, "warn-80"],
    [100, 100, "stop"],
    [150, 100, "stop"],
  ] as const)("spent %i of budget %i → %s", (spent, budget, status) => {
    expect(jobBudgetStatus(spent, budget)).toBe(status);
  });

  it("computes when a running job reaches its budget, rounded up", () => {
    // $1.00 left at $3.00/h = 20 min
    expect(msUntilBudgetReached(usd("4"), usd("5"), usd("3"))).toBe(1_200_000);
    expect(msUntilBudgetReached(0, 1, 3_600_001)).toBe(1);
    expect(msUntilBudgetReached(usd("6"), usd("5"), usd("3"))).toBe(0);
    expect(msUntilBudgetReached(0, 0, usd("3"))).toBeUndefined();
    expect(msUntilBudgetReached(0, usd("10000"), 1)).toBe(36_000_000_000_000_000);
  });
});
