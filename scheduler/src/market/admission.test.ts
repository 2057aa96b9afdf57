import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask, parseUsd } from "@capa/domain";
import { describe, expect, it } from "vitest";
import type { ClusterStateApi } from "../planner/engine.js";
import { JobRepo } from "../store/job-repo.js";
import { Admission } from "./admission.js";
import { budgetStore, memoryKv } from "./memory-kv.test-helper.js";

function job(id: string, tenant: string): Job {
  return {
    id,
    tenant,
    requestId: "",
    spec: defaultJobSpec(),
    state: "pending",
    reason: "",
    tasks: [newTask(id, 0)],
    createdAtMs: 0,
    updatedAtMs: 0,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

const MIN = 60_000;

describe("reservation reconcile", () => {
  it("releases old reservations whose job does not exist, and nothing else", async () => {
    let now = Date.UTC(2025, 8, 10);
    const budgets = budgetStore();
    const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => now);
    const admission = new Admission(budgets, {} as ClusterStateApi, jobs, () => now);
    await budgets.setLimits("acme", { monthlyCap: parseUsd("10"), hourlyCap: 0 }, now);
    const reserve = (tenant: string, jobId: string, total: string) =>
      budgets.reserve(tenant, jobId, { total: parseUsd(total), hourly: 0 }, now);
    await reserve("acme", "ghost", "4"); // a crash between reserve and the job's create: no job, ever
    await reserve("acme", "real", "3");
    await jobs.create(job("real", "acme"));
    await reserve("other.co", "ghost-2", "1"); // a tenant whose name is not a KV key
    now += 4 * MIN;
    await reserve("acme", "young", "2"); // a submission in flight: its job is about to be written

    now += 2 * MIN;
    const released = await admission.reconcile(5 * MIN);
    expect(released.map((r) => [r.tenant, r.jobId, r.amount])).toEqual([
      ["acme", "ghost", parseUsd("4")],
      ["other.co", "ghost-2", parseUsd("1")],
    ]);
    const acme = await budgets.get("acme", now);
    expect(acme.reservations.map((r) => r.jobId)).toEqual(["real", "young"]);
    expect((await budgets.summary("acme", now)).available).toBe(parseUsd("5"));
    expect((await budgets.get("other.co", now)).reservations).toEqual([]);
    // Idempotent: a second pass finds nothing more; once old enough, the young one goes too.
    expect(await admission.reconcile(5 * MIN)).toEqual([]);
    now += 4 * MIN;
    expect((await admission.reconcile(5 * MIN)).map((r) => r.jobId)).toEqual(["young"]);
  });

  it("keeps a reservation that was made again since it was read (guarded by its reservedAtMs)", async () => {
    const now = Date.UTC(2025, 8, 10);
    const budgets = budgetStore();
    await budgets.reserve("acme", "j", { total: 5, hourly: 0 }, now);
    await budgets.release("acme", "j", now);
    await budgets.reserve("acme", "j", { total: 5, hourly: 0 }, now + MIN);
    const stale = await budgets.apply("acme", { kind: "release", jobId: "j", ifReservedAtMs: now }, now + 10 * MIN);
    expect(stale.changed).toBe(false);
    expect((await budgets.get("acme", now)).reservations.map((r) => r.jobId)).toEqual(["j"]);
  });
});
