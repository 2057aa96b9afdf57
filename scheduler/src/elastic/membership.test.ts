import { defaultJobSpec, type Job, newTask, type RetryPolicy, type TaskState } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { settle } from "../jobs/settle.js";
import { reconcile } from "../planner/reconcile.js";
import { masterPort, recordGeneration, workerRendezvous } from "./membership.js";

const NOW = 1_000_000;
const FORMED = NOW - 10_000;

/** An elastic 2..4 gang in generation 2 at `size` workers: `states` of replicas 0..3 (standby ones pending). */
function elastic(states: TaskState[], size: number, retries?: RetryPolicy): Job {
  return {
    id: "j1",
    tenant: "t",
    requestId: "r",
    spec: defaultJobSpec({ kind: "training", replicas: 4, elastic: { min: 2, max: 4 }, ...(retries && { retries }) }),
    state: "running",
    reason: "",
    tasks: states.map((state, i) => ({
      ...newTask("j1", i),
      state,
      ...(i < size && { agentId: `agent-${i}`, placedAtMs: FORMED, startedAtMs: FORMED + 1 }),
      epoch: 7,
    })),
    createdAtMs: NOW - 20_000,
    updatedAtMs: FORMED,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
    rendezvous: {
      generation: 2,
      size,
      history: [
        { generation: 1, size: 2, reason: "start at 2", atMs: NOW - 15_000 },
        { generation: 2, size, reason: `grew 2 → ${size}`, atMs: FORMED },
      ],
    },
  };
}

describe("elastic membership (settle)", () => {
  it("a lost member with min left marks the gang changing and starts no retry attempt", () => {
    const job = settle(
      elastic(["running", "running", "running", "lost"], 4, { max: 1, backoffSeconds: 0, on: ["lost"] }),
      NOW,
    );
    expect(job.rendezvous?.changing).toEqual({ reason: "task j1-3 lost; 3 of 4 workers left", sinceMs: NOW });
    expect(job.attempt ?? 1).toBe(1);
    expect(job.state).toBe("rescheduling");
  });

  it("below min it is the normal gang path: the retry policy counts the loss", () => {
    const job = settle(
      elastic(["running", "lost", "pending", "pending"], 2, { max: 1, backoffSeconds: 0, on: ["lost"] }),
      NOW,
    );
    expect(job.rendezvous?.changing).toBeUndefined();
    expect(job.attempt).toBe(2);
    expect(job.attempts?.[0]).toMatchObject({ number: 1, outcome: "lost", taskId: "j1-1" });
  });

  it("a failed member still fails the gang (elastic shrinks on loss and preemption, not on errors)", () => {
    const job = settle(elastic(["running", "failed", "running", "pending"], 3), NOW);
    expect(job.state).toBe("failed");
  });

  it("succeeds when every member of the generation succeeded; standby tasks are closed", () => {
    const job = settle(elastic(["succeeded", "succeeded", "succeeded", "pending"], 3), NOW);
    expect(job.state).toBe("succeeded");
    expect(job.tasks[3]!.state).toBe("cancelled");
    expect(settle(elastic(["succeeded", "succeeded", "running", "pending"], 3), NOW).state).toBe("running");
  });

  it("standby tasks (pending with an old epoch) never trigger a gang restart", () => {
    const r = reconcile(elastic(["running", "running", "pending", "pending"], 2), () => [], { nowMs: NOW });
    // No listings: the running members are orphans (lost) here, which is the point: the standby tasks alone do
    // not stop anyone, and nothing is placed while members are active.
    const listed = (id: string) =>
      id === "j1-0" || id === "j1-1"
        ? [{ agentId: `agent-${id.at(-1)}`, assignment: { epoch: 7, stop: false } as never }]
        : [];
    const steady = reconcile(elastic(["running", "running", "pending", "pending"], 2), listed, { nowMs: NOW });
    expect(steady.stops).toEqual([]);
    expect(steady.place).toEqual([]);
    expect(r.job?.tasks.slice(0, 2).every((t) => t.state === "lost")).toBe(true);
  });
});

describe("rendezvous generations", () => {
  it("ranks by replica, one local process per worker, rank 0's host as master, a port per job and generation", () => {
    const job = elastic(["pending", "pending", "pending", "pending"], 2);
    const placements = [
      { replica: 2, agentId: "b" },
      { replica: 0, agentId: "a" },
      { replica: 1, agentId: "a" },
    ];
    const rdv = workerRendezvous(job, placements, (id) => `host-${id}`);
    expect([...rdv.entries()].sort(([x], [y]) => x - y)).toEqual([
      [
        0,
        {
          generation: 3,
          worldSize: 3,
          rank: 0,
          localRank: 0,
          localWorldSize: 1,
          masterAddr: "host-a",
          masterPort: masterPort("j1", 3),
        },
      ],
      [
        1,
        {
          generation: 3,
          worldSize: 3,
          rank: 1,
          localRank: 0,
          localWorldSize: 1,
          masterAddr: "host-a",
          masterPort: masterPort("j1", 3),
        },
      ],
      [
        2,
        {
          generation: 3,
          worldSize: 3,
          rank: 2,
          localRank: 0,
          localWorldSize: 1,
          masterAddr: "host-a",
          masterPort: masterPort("j1", 3),
        },
      ],
    ]);
    expect(masterPort("j1", 3)).not.toBe(masterPort("j1", 4));
    expect(masterPort("j1", 3)).toBeGreaterThanOrEqual(29500);
  });

  it("a commit records the next generation and puts the unplaced tasks on standby", () => {
    const job = elastic(["preempted", "preempted", "preempted", "lost"], 4);
    job.rendezvous!.changing = { reason: "task j1-3 lost", sinceMs: NOW - 1 };
    recordGeneration(job, [0, 1, 2], "shrank 4 → 3: task j1-3 lost", NOW);
    expect(job.rendezvous).toMatchObject({ generation: 3, size: 3 });
    expect(job.rendezvous?.changing).toBeUndefined();
    expect(job.rendezvous?.history.at(-1)).toEqual({
      generation: 3,
      size: 3,
      reason: "shrank 4 → 3: task j1-3 lost",
      atMs: NOW,
    });
    expect(job.tasks[3]).toMatchObject({ state: "pending", agentId: "", epoch: 7 });
    expect(job.tasks[3]!.message).toBe("standby: generation 3 runs 3 of 4 workers");
  });
});
