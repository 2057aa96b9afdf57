import { defaultJobSpec, type Job, newTask, type Task } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { endReasonOf, finishedAllocationOf, isSettleable, meteredAllocationOf, runningCost } from "./allocations.js";

const T0 = Date.UTC(2025, 0, 1);

function job(task: Partial<Task>, extra: Partial<Job> = {}): Job {
  return {
    id: "j1",
    tenant: "acme",
    requestId: "",
    spec: defaultJobSpec(),
    state: "running",
    reason: "",
    tasks: [{ ...newTask("j1", 0), ...task }],
    createdAtMs: T0,
    updatedAtMs: T0,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
    ...extra,
  };
}

const placed: Partial<Task> = {
  agentId: "a1",
  region: "eu-west",
  epoch: 3,
  gpuIndices: [0, 1],
  gpuModel: "H100-80GB",
  pricePerGpuHour: 3_600_000,
  placedAtMs: T0,
  startedAtMs: T0 + 1_000,
};

describe("allocations as metering sees them", () => {
  it("meters the scheduler's window at the locked price: running until now, final until finishedAt", () => {
    const running = job({ ...placed, state: "running" });
    expect(meteredAllocationOf(running, running.tasks[0]!)).toMatchObject({ epoch: 3, gpus: 2, observedEndMs: 0 });
    expect(runningCost(running.tasks[0]!, T0 + 2_000)).toBe(2_000); // 2 GPUs × 1 s at $3.60/h
    const done = job({ ...placed, state: "succeeded", finishedAtMs: T0 + 5_000 });
    expect(meteredAllocationOf(done, done.tasks[0]!)?.observedEndMs).toBe(T0 + 5_000);
    expect(runningCost(done.tasks[0]!, T0 + 9_000)).toBe(0);
    expect(isSettleable(done.tasks[0]!)).toBe(true);
  });

  it("never settles a task that was never placed", () => {
    const pending = job({ state: "cancelled", finishedAtMs: T0 });
    expect(isSettleable(pending.tasks[0]!)).toBe(false);
    expect(meteredAllocationOf(pending, pending.tasks[0]!)).toBeUndefined();
    expect(finishedAllocationOf(pending, pending.tasks[0]!, "p")).toBeUndefined();
  });

  it("names the end reason, budget-exhausted for a job the budget watch cancelled", () => {
    const stopped = job({ ...placed, state: "cancelled" }, { reason: "cancelled: budget-exhausted: spent $1.00" });
    expect(endReasonOf(stopped, stopped.tasks[0]!)).toBe("budget-exhausted");
    const lost = job({ ...placed, state: "lost", finishedAtMs: T0 + 2_000 });
    expect(finishedAllocationOf(lost, lost.tasks[0]!, "gpu-co")).toMatchObject({
      endReason: "lost",
      provider: "gpu-co",
      tenant: "acme",
      gpuIndices: [0, 1],
    });
  });
});
