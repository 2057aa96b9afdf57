import { jsonCodec, type Store, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask, type Task, type TaskState } from "@capa/domain";
import type { BudgetStore, Ledger } from "@capa/ledger";
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { testJob } from "../jobs/job.test-helper.js";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import { budgetStore, memoryKv } from "./memory-kv.test-helper.js";
import { Settler } from "./settler.js";

// Usage reports come from CAPA_TASKS; none here (the allocation is metered on the scheduler's window).
vi.mock("@capa/ledger", async (original) => ({
  ...(await original<typeof import("@capa/ledger")>()),
  readUsageReports: async () => [],
}));

const NOW = Date.UTC(2025, 8, 10);

function job(id: string, over: Partial<Job> = {}): Job {
  return testJob(id, { tasks: [newTask(id, 0)], createdAtMs: NOW, updatedAtMs: NOW, ...over });
}

/** A ledger that charges each task a fixed amount, once per task + epoch. */
function fakeLedger(amounts: Record<string, number>) {
  const written = new Map<string, number>();
  const ledger = {
    async recordSettlement(s: Parameters<Ledger["recordSettlement"]>[0]) {
      const key = `${s.taskId}:${s.epoch}`;
      const alreadySettled = written.has(key);
      if (!alreadySettled) written.set(key, amounts[s.taskId] ?? 0);
      return { alreadySettled, entries: { charge: { amount: written.get(key)! } } };
    },
    async chargeOf(_tenant: string, taskId: string, epoch: number) {
      const amount = written.get(`${taskId}:${epoch}`);
      return amount === undefined ? undefined : { amount };
    },
  };
  return { ledger: ledger as unknown as Ledger, written };
}

function placed(jobId: string, replica: number, state: TaskState): Task {
  return {
    ...newTask(jobId, replica),
    state,
    agentId: "a1",
    gpuIndices: [replica],
    pricePerGpuHour: 1_000_000,
    epoch: 1,
    placedAtMs: NOW,
    startedAtMs: NOW,
    finishedAtMs: state === "running" ? 0 : NOW + 1000,
  };
}

/** A settler (a leader's) on these stores; several may share them, one after the other. */
function settlerOn(ledger: Ledger, budgets: BudgetStore, jobs: JobRepo): Settler {
  return new Settler({
    ledger,
    budgets,
    jobs,
    store: {} as Store,
    providerOf: () => "",
    metrics: new SchedulerMetrics(),
    logger: pino({ level: "silent" }),
    now: () => NOW,
  });
}

function setup(ledger: Ledger = {} as Ledger) {
  const budgets = budgetStore();
  const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => NOW);
  const settler = settlerOn(ledger, budgets, jobs);
  jobs.onChange((entry) => settler.observe(entry));
  return { budgets, jobs, settler };
}

describe("Settler", () => {
  it("settles again after a leader flap while the settled-marker listing was failing (recovery never dropped)", async () => {
    const { budgets, jobs, settler } = setup();
    // A final job that never got GPUs: settling it needs no ledger, only its reservation and marker.
    await budgets.reserve("acme", "j1", { total: 100, hourly: 0 }, NOW);
    await jobs.create(job("j1", { state: "cancelled", finishedAtMs: NOW, reserved: 100 }));
    const listed = vi.spyOn(budgets, "settledJobIds").mockRejectedValueOnce(new Error("KV unavailable"));

    settler.start();
    await settler.idle(); // the listing failed: its retry waits on a backoff timer
    expect(listed).toHaveBeenCalledTimes(1);
    await settler.stop(); // demoted during the backoff
    settler.start(); // re-elected: recovery must run again
    await settler.idle();

    expect(listed).toHaveBeenCalledTimes(2);
    expect(await budgets.settledMarker("j1")).toMatchObject({ jobId: "j1", total: 0 });
    expect((await budgets.get("acme", NOW)).reservations).toEqual([]);
    await settler.stop();
  });

  it("settles a failed job only once the sibling still running has ended, billing both allocations", async () => {
    const { ledger, written } = fakeLedger({ "j1-0": 300, "j1-1": 500 });
    const { budgets, jobs, settler } = setup(ledger);
    await budgets.reserve("acme", "j1", { total: 10_000, hourly: 0 }, NOW);
    const spec = { ...defaultJobSpec(), replicas: 2 };
    await jobs.create(
      job("j1", { spec, state: "running", tasks: [placed("j1", 0, "running"), placed("j1", 1, "running")] }),
    );
    settler.start();
    await settler.idle();
    // Replica 0 fails: the job is failed while replica 1 still runs (until the scheduler has stopped it).
    await jobs.mutate("j1", (j) => ({ ...j, state: "failed", tasks: [placed("j1", 0, "failed"), j.tasks[1]!] }));
    await settler.idle();
    expect([...written.keys()]).toEqual(["j1-0:1"]);
    expect(await budgets.settledMarker("j1")).toBeUndefined();
    expect((await budgets.get("acme", NOW)).reservations.map((r) => r.jobId)).toEqual(["j1"]);

    await jobs.mutate("j1", (j) => ({ ...j, tasks: [j.tasks[0]!, placed("j1", 1, "cancelled")] }));
    await settler.idle();
    expect(written).toEqual(
      new Map([
        ["j1-0:1", 300],
        ["j1-1:1", 500],
      ]),
    );
    expect(await budgets.settledMarker("j1")).toMatchObject({ total: 800, allocs: { "j1-0:1": 300, "j1-1:1": 500 } });
    expect(await budgets.jobAllocations("j1")).toBeUndefined();
    expect(jobs.get("j1")!.job.spent).toBe(800);
    expect(await budgets.summary("acme", NOW)).toMatchObject({ settled: 800, reserved: 0 });
    expect(settler.trackedJobs).toBe(0);
    await settler.stop();
  });

  it("bills an allocation that ended after its job was marked settled, and adds it to spent and the month", async () => {
    const { ledger, written } = fakeLedger({ "j1-0": 300, "j1-1": 500 });
    const { budgets, jobs, settler } = setup(ledger);
    // The state a premature settlement left: replica 0 billed, the reservation settled with it, the marker.
    await budgets.reserve("acme", "j1", { total: 10_000, hourly: 0 }, NOW);
    await budgets.settle("acme", "j1", 300, NOW);
    await budgets.markJobSettled({
      jobId: "j1",
      tenant: "acme",
      total: 300,
      settledAtMs: NOW,
      allocs: { "j1-0:1": 300 },
    });
    written.set("j1-0:1", 300);
    const spec = { ...defaultJobSpec(), replicas: 2 };
    const tasks = [placed("j1", 0, "failed"), placed("j1", 1, "running")];
    await jobs.create(job("j1", { spec, state: "failed", tasks, spent: 300 }));
    settler.start();
    await settler.idle();

    await jobs.mutate("j1", (j) => ({ ...j, tasks: [j.tasks[0]!, placed("j1", 1, "cancelled")] }));
    await settler.idle();
    expect(written.get("j1-1:1")).toBe(500);
    expect(await budgets.settledMarker("j1")).toMatchObject({ total: 800, allocs: { "j1-0:1": 300, "j1-1:1": 500 } });
    expect(jobs.get("j1")!.job.spent).toBe(800);
    expect(await budgets.summary("acme", NOW)).toMatchObject({ settled: 800, reserved: 0 });
    expect(await budgets.jobAllocations("j1")).toBeUndefined();

    // Seen again with nothing new: nothing more is billed or added.
    await jobs.mutate("j1", (j) => ({ ...j, reason: "touched" }));
    await settler.idle();
    expect((await budgets.summary("acme", NOW)).settled).toBe(800);
    expect(settler.trackedJobs).toBe(0);
    await settler.stop();
  });
  it("reads allocs.<jobId> only for jobs the recovery listing found one for, and still counts what it holds", async () => {
    const { ledger, written } = fakeLedger({ "j1-0": 300, "j2-0": 500 });
    const { budgets, jobs, settler } = setup(ledger);
    // j2's earlier allocation (epoch 1) was billed and noted by the previous leader; the record now names epoch 2.
    await budgets.noteAllocation("acme", "j2", { taskId: "j2-0", epoch: 1 }, 200);
    await budgets.reserve("acme", "j2", { total: 10_000, hourly: 0 }, NOW);
    await jobs.create(job("j2", { state: "running", tasks: [{ ...placed("j2", 0, "running"), epoch: 2 }] }));
    const read = vi.spyOn(budgets, "jobAllocations");
    settler.start();
    await settler.idle();

    // A job that starts and ends in this term: its charges need no read (nothing can have noted them).
    await budgets.reserve("acme", "j1", { total: 10_000, hourly: 0 }, NOW);
    await jobs.create(job("j1", { state: "running", tasks: [placed("j1", 0, "running")] }));
    await jobs.mutate("j1", (j) => ({
      ...j,
      state: "succeeded",
      finishedAtMs: NOW,
      tasks: [placed("j1", 0, "succeeded")],
    }));
    await jobs.mutate("j2", (j) => ({
      ...j,
      state: "succeeded",
      finishedAtMs: NOW,
      tasks: [{ ...placed("j2", 0, "succeeded"), epoch: 2 }],
    }));
    await settler.idle();

    expect(read.mock.calls.map(([id]) => id)).toEqual(["j2"]);
    expect(written).toEqual(
      new Map([
        ["j1-0:1", 300],
        ["j2-0:2", 500],
      ]),
    );
    expect(jobs.get("j1")!.job.spent).toBe(300);
    expect(jobs.get("j2")!.job.spent).toBe(700);
    expect(await budgets.settledMarker("j2")).toMatchObject({ total: 700, allocs: { "j2-0:1": 200, "j2-0:2": 500 } });
    expect(await budgets.jobAllocations("j2")).toBeUndefined();
    await settler.stop();
  });

  it("settles a final job's last allocation without noting it in allocs.<jobId>; a new leader bills it once", async () => {
    const { ledger, written } = fakeLedger({ "j1-0": 300 });
    const { budgets, jobs, settler } = setup(ledger);
    await budgets.reserve("acme", "j1", { total: 10_000, hourly: 0 }, NOW);
    await jobs.create(job("j1", { state: "succeeded", finishedAtMs: NOW, tasks: [placed("j1", 0, "succeeded")] }));
    const noted = vi.spyOn(budgets, "noteAllocation");
    const erased = vi.spyOn(budgets, "deleteJobAllocations");
    // The leader dies after the ledger write, before the job's settlement: the reservation write fails, then it
    // is demoted during the retry's backoff.
    vi.spyOn(budgets, "settle").mockRejectedValueOnce(new Error("KV unavailable"));
    settler.start();
    await settler.idle();
    expect(written).toEqual(new Map([["j1-0:1", 300]]));
    expect(await budgets.settledMarker("j1")).toBeUndefined();
    await settler.stop();

    // The next leader (same stores) settles the job again: the ledger's entry, found again, is its charge.
    const next = settlerOn(ledger, budgets, jobs);
    next.start();
    await next.idle();
    expect(written).toEqual(new Map([["j1-0:1", 300]]));
    expect(await budgets.settledMarker("j1")).toMatchObject({ total: 300, allocs: { "j1-0:1": 300 } });
    expect(jobs.get("j1")!.job.spent).toBe(300);
    expect(await budgets.summary("acme", NOW)).toMatchObject({ settled: 300, reserved: 0 });
    // No allocs.<jobId> was written, so none was removed either.
    expect(noted).not.toHaveBeenCalled();
    expect(erased).not.toHaveBeenCalled();
    expect(await budgets.jobAllocations("j1")).toBeUndefined();
    await next.stop();
  });
});
