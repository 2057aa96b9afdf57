import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask, parseUsd, type Task } from "@capa/domain";
import { HourlyRateExceededError } from "@capa/market";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import { BudgetWatch } from "./budget-watch.js";
import { budgetStore, memoryKv } from "./memory-kv.test-helper.js";
import type { Settler } from "./settler.js";

const NOW = Date.UTC(2025, 8, 10);
const usd = parseUsd;

function running(jobId: string, replica: number, price: string): Task {
  return {
    ...newTask(jobId, replica),
    state: "running",
    agentId: "a1",
    gpuIndices: [replica],
    pricePerGpuHour: usd(price),
    epoch: 1,
    placedAtMs: NOW,
    startedAtMs: NOW,
  };
}

describe("BudgetWatch, tenant hourly cap", () => {
  it("keeps the admitted rate while a job runs below it, so its tasks coming back are never refused", async () => {
    const budgets = budgetStore();
    const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => NOW);
    const cancelled: string[] = [];
    const watch = new BudgetWatch({
      jobs,
      budgets,
      settler: { settledSpend: async () => 0 } as unknown as Settler,
      cancel: async (_jobId, reason) => cancelled.push(reason),
      metrics: new SchedulerMetrics(),
      logger: pino({ level: "silent" }),
      now: () => NOW,
      maxCheckIntervalMs: 60_000,
    });
    await budgets.setLimits("acme", { hourlyCap: usd("10") }, NOW);
    // Admitted for 2 replicas × 1 GPU at $4/h; the reservation is big enough that only the rate matters.
    await budgets.reserve("acme", "j1", { total: usd("100"), hourly: usd("8") }, NOW);
    const spec = { ...defaultJobSpec(), replicas: 2, gpusPerReplica: 1 };
    await jobs.create({
      id: "j1",
      tenant: "acme",
      requestId: "",
      spec,
      state: "running",
      reason: "",
      tasks: [running("j1", 0, "4"), newTask("j1", 1)], // partly placed: $4/h running
      createdAtMs: NOW,
      updatedAtMs: NOW,
      finishedAtMs: 0,
      cancelRequested: false,
      spent: 0,
      reserved: usd("100"),
    });
    watch.start();
    await watch.check("j1");
    expect((await budgets.get("acme", NOW)).reservations[0]!.hourly).toBe(usd("8"));
    // The room is still j1's: another job cannot take it.
    await expect(budgets.reserve("acme", "j2", { total: 0, hourly: usd("6") }, NOW)).rejects.toBeInstanceOf(
      HourlyRateExceededError,
    );

    // The second replica is placed: the job runs at its admitted rate again, and goes on running.
    await jobs.mutate("j1", (j) => ({ ...j, tasks: [j.tasks[0]!, running("j1", 1, "4")] }));
    await watch.check("j1");
    expect(cancelled).toEqual([]);
    expect((await budgets.get("acme", NOW)).reservations[0]!.hourly).toBe(usd("8"));

    // Placed dearer than quoted: the rate is raised (and refused past the cap, stopping the job).
    await jobs.mutate("j1", (j) => ({ ...j, tasks: [j.tasks[0]!, running("j1", 1, "7")] }));
    await watch.check("j1");
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatch(/^budget-exhausted: hourly cap reached/);
    await watch.stop();
  });
});
