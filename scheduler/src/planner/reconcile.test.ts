import { defaultJobSpec, type Job, newTask, type TaskAssignment } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { testJob } from "../jobs/job.test-helper.js";
import { type Listing, reconcile } from "./reconcile.js";

function job(overrides: Partial<Job> = {}, replicas = 1, kind: Job["spec"]["kind"] = "batch"): Job {
  return testJob("jabc", {
    spec: defaultJobSpec({
      replicas,
      kind,
      template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 1 },
    }),
    tasks: Array.from({ length: replicas }, (_, i) => newTask("jabc", i)),
    ...overrides,
  });
}

function assigned(
  j: Job,
  replica: number,
  agentId: string,
  epoch: number,
  state: Job["tasks"][number]["state"] = "running",
) {
  Object.assign(j.tasks[replica]!, { state, agentId, epoch, gpuIndices: [replica] });
  return j;
}

function listing(
  j: Job,
  replica: number,
  agentId: string,
  epoch: number,
  extra: Partial<TaskAssignment> = {},
): Listing {
  return {
    agentId,
    assignment: {
      taskId: j.tasks[replica]!.id,
      jobId: j.id,
      replica,
      gpuIndices: [replica],
      template: j.spec.template,
      epoch,
      pricePerGpuHour: 1,
      tenant: "acme",
      assignedAtMs: 5,
      stop: false,
      stopReason: "",
      ...extra,
    },
  };
}

const index = (ls: Listing[]) => (taskId: string) => ls.filter((l) => l.assignment.taskId === taskId);

describe("reconcile", () => {
  it("asks to place every replica of a new job and changes nothing else", () => {
    const r = reconcile(job({}, 3), () => [], { nowMs: 10 });
    expect(r).toEqual({ stops: [], removals: [], place: [0, 1, 2] });
  });

  it("leaves a running job with current listings alone", () => {
    const j = assigned(job({ state: "running" }), 0, "a1", 7);
    expect(reconcile(j, index([listing(j, 0, "a1", 7)]), { nowMs: 10 })).toEqual({
      stops: [],
      removals: [],
      place: [],
    });
  });

  it("stops running tasks of a cancelled job and cancels its unplaced ones", () => {
    const j = assigned(job({ state: "running", cancelRequested: true }, 2), 0, "a1", 7);
    const r = reconcile(j, index([listing(j, 0, "a1", 7)]), { nowMs: 10 });
    expect(r.stops).toEqual([{ agentId: "a1", taskId: "jabc-0", epoch: 7, reason: "cancelled" }]);
    expect(r.job?.tasks[1]?.state).toBe("cancelled");
    expect(r.place).toEqual([]);
  });

  it("does not stop an assignment twice", () => {
    const j = assigned(job({ state: "running", cancelRequested: true }), 0, "a1", 7);
    const r = reconcile(j, index([listing(j, 0, "a1", 7, { stop: true })]), { nowMs: 10 });
    expect(r.stops).toEqual([]);
  });

  it("removes listings of final tasks and stale epochs", () => {
    const j = assigned(job({ state: "running" }, 2), 0, "a1", 7, "succeeded");
    assigned(j, 1, "a2", 9);
    const r = reconcile(j, index([listing(j, 0, "a1", 7), listing(j, 1, "a2", 9), listing(j, 1, "a3", 4)]), {
      nowMs: 10,
    });
    expect(r.removals).toEqual([
      { agentId: "a1", taskId: "jabc-0", epoch: 7 },
      { agentId: "a3", taskId: "jabc-1", epoch: 4 },
    ]);
    expect(r.stops).toEqual([]);
  });

  it("marks an active task without a listing lost, so it is re-placed", () => {
    const j = assigned(job({ state: "running" }), 0, "a1", 7);
    const r = reconcile(j, () => [], { nowMs: 10 });
    expect(r.job?.tasks[0]).toMatchObject({ state: "lost", message: "assignment missing" });
    expect(r.job?.state).toBe("rescheduling");
    expect(r.place).toEqual([0]);
  });

  it("adopts a newer listing of a waiting task only at recovery", () => {
    const j = job({}, 1);
    const ls = index([listing(j, 0, "a1", 12)]);
    const runtime = reconcile(j, ls, { nowMs: 10 });
    expect(runtime.removals).toEqual([{ agentId: "a1", taskId: "jabc-0", epoch: 12 }]);
    const recovery = reconcile(j, ls, { nowMs: 10, adopt: true, agentRegion: () => "eu-west" });
    expect(recovery.removals).toEqual([]);
    expect(recovery.place).toEqual([]);
    expect(recovery.job?.tasks[0]).toMatchObject({ state: "assigned", agentId: "a1", epoch: 12, region: "eu-west" });
    expect(recovery.job?.state).toBe("placed");
  });

  it("restarts a gang: stops the live members of a training job with a lost member before re-placing", () => {
    const j = assigned(job({ state: "running" }, 2, "training"), 0, "a1", 7);
    assigned(j, 1, "a2", 7, "lost");
    const r = reconcile(j, index([listing(j, 0, "a1", 7)]), { nowMs: 10 });
    expect(r.stops).toEqual([{ agentId: "a1", taskId: "jabc-0", epoch: 7, reason: "gang restart" }]);
    expect(r.place).toEqual([]);
    j.tasks[0]!.state = "preempted";
    expect(reconcile(j, () => [], { nowMs: 11 }).place).toEqual([0, 1]);
  });

  it("places nothing for a final job and stops what still runs", () => {
    const j = assigned(job({ state: "failed" }, 2), 0, "a1", 7);
    assigned(j, 1, "a2", 7, "failed");
    const r = reconcile(j, index([listing(j, 0, "a1", 7)]), { nowMs: 10 });
    expect(r.stops).toEqual([{ agentId: "a1", taskId: "jabc-0", epoch: 7, reason: "job finished" }]);
    expect(r.place).toEqual([]);
  });
});

describe("reconcile: retry backoff", () => {
  it("holds a retried task until its notBeforeMs and asks to be woken then", () => {
    const j = job({}, 2);
    Object.assign(j.tasks[0]!, { state: "pending", epoch: 3, notBeforeMs: 5_000 });
    const early = reconcile(j, () => [], { nowMs: 4_000 });
    expect(early.place).toEqual([1]);
    expect(early.wakeAtMs).toBe(5_000);
    const due = reconcile(j, () => [], { nowMs: 5_000 });
    expect(due.place).toEqual([0, 1]);
    expect(due.wakeAtMs).toBeUndefined();
  });

  it("a gang waiting for a retry's backoff is placed all at once, after it", () => {
    const j = job({}, 2, "training");
    for (const t of j.tasks) Object.assign(t, { state: "pending", epoch: 3, notBeforeMs: 5_000 });
    expect(reconcile(j, () => [], { nowMs: 4_000 })).toMatchObject({ place: [], wakeAtMs: 5_000 });
    expect(reconcile(j, () => [], { nowMs: 5_000 }).place).toEqual([0, 1]);
  });

  it("a gang member back to pending for a retry stops the running members (gang restart)", () => {
    const j = job({ state: "running" }, 2, "training");
    assigned(j, 0, "a1", 3);
    Object.assign(j.tasks[1]!, { state: "pending", epoch: 3, agentId: "" });
    const r = reconcile(j, (id) => (id === j.tasks[0]!.id ? [listing(j, 0, "a1", 3)] : []), { nowMs: 10 });
    expect(r.stops).toEqual([{ agentId: "a1", taskId: j.tasks[0]!.id, epoch: 3, reason: "gang restart" }]);
    expect(r.place).toEqual([]);
  });
});
