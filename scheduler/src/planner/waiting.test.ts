import type { Job } from "@capa/domain";
import { newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { WaitingJobs } from "./waiting.js";

function job(id: string, priority: number, createdAtMs: number, over: Partial<Job> = {}): Job {
  return {
    id,
    tenant: "t",
    requestId: "",
    spec: { priority } as Job["spec"],
    state: "pending",
    reason: "",
    tasks: [newTask(id, 0)],
    createdAtMs,
    updatedAtMs: createdAtMs,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
    ...over,
  };
}

describe("WaitingJobs", () => {
  it("keeps waiting jobs by priority, then age, then id, as they change", () => {
    const w = new WaitingJobs();
    w.observe(job("c", 0, 30));
    w.observe(job("a", 0, 10));
    w.observe(job("u", 10, 50));
    w.observe(job("b", 0, 10));
    expect(w.ids()).toEqual(["u", "a", "b", "c"]);
    // Placed (its task assigned): leaves the index; a repeated observation changes nothing.
    const placed = job("a", 0, 10);
    placed.tasks[0]!.state = "assigned";
    w.observe(placed);
    w.observe(job("c", 0, 30));
    expect(w.ids()).toEqual(["u", "b", "c"]);
    // Back to waiting (preempted), a final job, a cancelled one.
    placed.tasks[0]!.state = "preempted";
    w.observe(placed);
    w.observe(job("u", 10, 50, { state: "succeeded" }));
    w.observe(job("c", 0, 30, { cancelRequested: true }));
    expect(w.ids()).toEqual(["a", "b"]);
    expect(w.size).toBe(2);
  });

  it("re-ranks a job whose priority changed", () => {
    const w = new WaitingJobs();
    w.observe(job("a", 0, 10));
    w.observe(job("b", 0, 20));
    w.observe(job("b", 5, 20));
    expect(w.ids()).toEqual(["b", "a"]);
  });
});
