import type { Store } from "@capa/bus";
import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask } from "@capa/domain";
import type { Ledger } from "@capa/ledger";
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import { budgetStore, memoryKv } from "./memory-kv.test-helper.js";
import { Settler } from "./settler.js";

const NOW = Date.UTC(2025, 8, 10);

function job(id: string, over: Partial<Job> = {}): Job {
  return {
    id,
    tenant: "acme",
    requestId: "",
    spec: defaultJobSpec(),
    state: "pending",
    reason: "",
    tasks: [newTask(id, 0)],
    createdAtMs: NOW,
    updatedAtMs: NOW,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
    ...over,
  };
}

function setup() {
  const budgets = budgetStore();
  const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => NOW);
  const settler = new Settler({
    ledger: {} as Ledger,
    budgets,
    jobs,
    store: {} as Store,
    providerOf: () => "",
    metrics: new SchedulerMetrics(),
    logger: pino({ level: "silent" }),
    now: () => NOW,
  });
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
});
