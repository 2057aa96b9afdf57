import { defaultJobSpec, type Job, newTask, type RetryPolicy, type TaskState } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { settle } from "../jobs/settle.js";
import { applyRetries, backoffSeconds } from "./policy.js";

const NOW = 1_000_000;

function jobWith(kind: "batch" | "training", states: TaskState[], retries?: RetryPolicy): Job {
  return {
    id: "j1",
    tenant: "t",
    requestId: "r",
    spec: defaultJobSpec({ kind, replicas: states.length, ...(retries && { retries }) }),
    state: "running",
    reason: "",
    tasks: states.map((state, i) => ({
      ...newTask("j1", i),
      state,
      agentId: `agent-${i}`,
      epoch: 7,
      placedAtMs: NOW - 10_000,
      startedAtMs: NOW - 9_000,
      ...(state === "failed" && { exitCode: 3, finishedAtMs: NOW - 1 }),
    })),
    createdAtMs: NOW - 20_000,
    updatedAtMs: NOW - 10_000,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

const policy = (max: number, on: RetryPolicy["on"] = ["failed"], backoff = 10): RetryPolicy => ({
  max,
  backoffSeconds: backoff,
  on,
});

describe("retry policy", () => {
  it("without a policy a failed task fails the job, as before", () => {
    const job = settle(jobWith("batch", ["failed"]), NOW);
    expect(job.state).toBe("failed");
    expect(job.attempts ?? []).toEqual([]);
  });

  it("a failed task with retries left goes back to pending after a backoff, the attempt recorded", () => {
    const job = settle(jobWith("batch", ["failed", "running"], policy(2)), NOW);
    expect(job.state).toBe("running");
    expect(job.attempt).toBe(2);
    expect(job.tasks[0]).toMatchObject({ state: "pending", agentId: "", epoch: 7, notBeforeMs: NOW + 10_000 });
    expect(job.tasks[0]!.message).toBe("retry 1 of 2 after: task j1-0 exited with code 3");
    // Batch replicas are independent: the running one is left alone.
    expect(job.tasks[1]).toMatchObject({ state: "running", agentId: "agent-1" });
    expect(job.attempts).toEqual([
      {
        number: 1,
        outcome: "failed",
        taskId: "j1-0",
        agentId: "agent-0",
        exitCode: 3,
        signal: "",
        reason: "task j1-0 exited with code 3",
        startedAtMs: NOW - 20_000,
        finishedAtMs: NOW - 1,
      },
    ]);
  });

  it("a gang restarts as a whole: every member is re-placed, and the stopped ones are not counted", () => {
    let job = settle(jobWith("training", ["running", "failed", "succeeded"], policy(1)), NOW);
    expect(job.attempt).toBe(2);
    expect(job.tasks.map((t) => t.state)).toEqual(["running", "pending", "pending"]);
    expect(job.tasks.every((t) => t.notBeforeMs === NOW + 10_000)).toBe(true);
    // The running member is stopped by the gang restart and comes back preempted: part of attempt 1.
    job.tasks[0]!.state = "preempted";
    job = settle(job, NOW + 500);
    expect(job.attempt).toBe(2);
    expect(job.attempts).toHaveLength(1);
    expect(job.state).toBe("rescheduling");
  });

  it("no retries left: the job fails, the reason counts the attempts, every attempt is listed", () => {
    let job = settle(jobWith("batch", ["failed"], policy(1)), NOW);
    expect(job.state).toBe("pending");
    // Attempt 2 is placed and fails too.
    // (placement clears the message, as assignTasks does)
    Object.assign(job.tasks[0]!, {
      state: "failed",
      agentId: "agent-9",
      exitCode: 1,
      message: "",
      placedAtMs: NOW + 20_000,
    });
    job = settle(job, NOW + 30_000);
    expect(job.state).toBe("failed");
    expect(job.reason).toBe("task j1-0 exited with code 1; attempt 2 of 2, no retries left");
    expect(job.attempts!.map((a) => [a.number, a.outcome, a.agentId, a.exitCode])).toEqual([
      [1, "failed", "agent-0", 3],
      [2, "failed", "agent-9", 1],
    ]);
  });

  it("the attempt that succeeds is recorded when the job ends", () => {
    let job = settle(jobWith("batch", ["failed"], policy(3)), NOW);
    Object.assign(job.tasks[0]!, { state: "succeeded", agentId: "agent-2", placedAtMs: NOW + 20_000 });
    job = settle(job, NOW + 30_000);
    expect(job.state).toBe("succeeded");
    expect(job.attempts!.map((a) => [a.number, a.outcome, a.agentId])).toEqual([
      [1, "failed", "agent-0"],
      [2, "succeeded", "agent-2"],
    ]);
  });

  it.each([
    ["lost", ["failed"], false],
    ["lost", ["lost"], true],
    ["preempted", ["failed", "preempted"], true],
    ["preempted", ["failed"], false],
  ] as const)("a %s task with on %j counts as an attempt: %s", (state, on, counted) => {
    const job = settle(jobWith("batch", [state], policy(2, [...on])), NOW);
    expect(job.attempt ?? 1).toBe(counted ? 2 : 1);
    // Lost and preempted tasks are re-placed either way; a counted one waits for the backoff.
    expect(job.tasks[0]!.state).toBe(state);
    expect(job.tasks[0]!.notBeforeMs ?? 0).toBe(counted ? NOW + 10_000 : 0);
    expect(job.state).toBe("rescheduling");
  });

  it("a lost task with no retries left fails the job instead of being re-placed", () => {
    const job = jobWith("batch", ["lost"], policy(1, ["lost"]));
    job.attempt = 2;
    const done = settle(job, NOW);
    expect(done.state).toBe("failed");
    expect(done.tasks[0]!.state).toBe("failed");
    expect(done.reason).toBe("task j1-0 lost; attempt 2 of 2, no retries left");
  });

  it("a cancelled job is not retried", () => {
    const job = jobWith("batch", ["failed"], policy(3));
    job.cancelRequested = true;
    expect(applyRetries(job, NOW)).toEqual({});
    expect(job.tasks[0]!.state).toBe("failed");
  });

  it("backoff doubles per retry, capped at 10 minutes", () => {
    expect([1, 2, 3, 4, 10].map((r) => backoffSeconds(30, r))).toEqual([30, 60, 120, 240, 600]);
    expect(backoffSeconds(0, 5)).toBe(0);
  });
});
