import { encode, jsonCodec, type Store, subjects, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, newTask, type UsageReport } from "@capa/domain";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import type { BudgetWatch } from "./budget-watch.js";
import { memoryKv } from "./memory-kv.test-helper.js";
import { UsageConsumer } from "./usage-consumer.js";

const NOW = Date.UTC(2026, 0, 5);

async function runningJob(jobs: JobRepo): Promise<Job> {
  const job: Job = {
    id: "j1",
    tenant: "acme",
    requestId: "",
    spec: { ...defaultJobSpec(), replicas: 1, gpusPerReplica: 1 },
    state: "running",
    reason: "",
    tasks: [
      {
        ...newTask("j1", 0),
        state: "running",
        agentId: "a1",
        gpuIndices: [0],
        pricePerGpuHour: 2_000_000,
        epoch: 1,
        placedAtMs: NOW - 10_000,
        startedAtMs: NOW - 9_000,
      },
    ],
    createdAtMs: NOW - 11_000,
    updatedAtMs: NOW,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
  await jobs.create(job);
  return job;
}

function usage(job: Job, final: boolean, sequence: number): UsageReport {
  return {
    taskId: job.tasks[0]!.id,
    jobId: job.id,
    agentId: "a1",
    epoch: 1,
    startedAtMs: NOW - 9_000,
    untilMs: NOW - 1_000,
    gpus: 1,
    gpuMilliseconds: 8_000,
    final,
    sequence,
  };
}

describe("UsageConsumer", () => {
  it("checks the budget on every accepted report, but has the running spend persisted only for periodic ones", async () => {
    const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => NOW);
    const job = await runningJob(jobs);
    const checks: { jobId: string; persist: boolean }[] = [];
    const watch = {
      check: async (jobId: string, persist = false) => {
        checks.push({ jobId, persist });
      },
    } as unknown as BudgetWatch;
    const consumer = new UsageConsumer({
      store: {} as Store,
      jobs,
      watch,
      metrics: new SchedulerMetrics(),
      logger: pino({ level: "silent" }),
      now: () => NOW,
      listed: () => true,
    });
    const subject = subjects.taskUsage(job.tasks[0]!.id, "a1");

    expect(consumer.handle(subject, encode.usage(usage(job, false, 1)))).toBe("accepted");
    // The final report comes right before the final status; settlement writes the exact spend after it.
    expect(consumer.handle(subject, encode.usage(usage(job, true, 2)))).toBe("accepted");
    expect(checks).toEqual([
      { jobId: "j1", persist: true },
      { jobId: "j1", persist: false },
    ]);
  });
});
