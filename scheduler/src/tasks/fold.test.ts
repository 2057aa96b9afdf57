import { defaultJobSpec, type Job, newTask, type TaskStatusReport } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { testJob } from "../jobs/job.test-helper.js";
import { foldStatus } from "./fold.js";

function job(replicas = 1, overrides: Partial<Job> = {}): Job {
  const tasks = Array.from({ length: replicas }, (_, i) => ({
    ...newTask("jx", i),
    state: "assigned" as const,
    agentId: "a1",
    epoch: 5,
  }));
  return testJob("jx", { spec: defaultJobSpec({ replicas }), state: "placed", tasks, ...overrides });
}

function report(state: TaskStatusReport["state"], extra: Partial<TaskStatusReport> = {}): TaskStatusReport {
  return {
    taskId: "jx-0",
    jobId: "jx",
    agentId: "a1",
    epoch: 5,
    state,
    exitCode: 0,
    signal: "",
    startedAtMs: 100,
    finishedAtMs: 0,
    message: "",
    sentAtMs: 100,
    bootId: "b",
    ...extra,
  };
}

describe("foldStatus", () => {
  it("moves a task forward and folds the job state", () => {
    const r = foldStatus(job(), report("running"), 200);
    expect(r).toMatchObject({ verdict: "applied", final: false });
    expect(r.job?.state).toBe("running");
    expect(r.job?.tasks[0]?.startedAtMs).toBe(100);
  });

  it.each([
    // [agent startedAt, agent finishedAt, scheduler now] → billed window clamped to [placedAt=50, now]
    [100, 400, 500, 100, 400],
    [10, 400, 500, 50, 400], // agent clock behind: start before the placement commit
    [100, 9_000, 500, 100, 500], // agent clock ahead: end after the scheduler saw the report
    [100, 0, 500, 100, 500], // no end reported: the scheduler's own clock
  ])("keeps the billing window inside what the scheduler observed (start %d, end %d, now %d)", (start, end, now, billedStart, billedEnd) => {
    const placed = job(1);
    placed.tasks[0]!.placedAtMs = 50;
    const r = foldStatus(placed, report("succeeded", { startedAtMs: start, finishedAtMs: end }), now);
    expect(r.job?.tasks[0]).toMatchObject({ startedAtMs: billedStart, finishedAtMs: billedEnd });
  });

  it("ignores a report for another epoch or agent (fencing)", () => {
    expect(foldStatus(job(), report("running", { epoch: 4 }), 200).verdict).toBe("stale");
    expect(foldStatus(job(), report("running", { agentId: "a2" }), 200).verdict).toBe("stale");
    expect(foldStatus(job(), report("succeeded", { epoch: 4 }), 200)).toMatchObject({ verdict: "stale", final: true });
  });

  it.each([
    ["a task whose placement commit is unknown (still pending, epoch 0)", { state: "pending" as const, epoch: 0 }],
    ["a task the job still holds at an older epoch (a retry placed, not yet committed)", { state: "lost" as const }],
  ])("keeps the listing of a final report newer than %s, for adoption", (_name, task) => {
    const uncommitted = job(1);
    Object.assign(uncommitted.tasks[0]!, task);
    const r = foldStatus(uncommitted, report("succeeded", { epoch: 9 }), 200);
    expect(r).toEqual({ verdict: "stale", final: false });
  });

  it("never moves a task backwards (redelivery, reordering)", () => {
    const running = foldStatus(job(), report("running"), 200).job!;
    expect(foldStatus(running, report("starting"), 300).verdict).toBe("unchanged");
  });

  it("records the exit code of a failed task and fails the job with a reason", () => {
    const r = foldStatus(job(), report("failed", { exitCode: 3, finishedAtMs: 900 }), 1000);
    expect(r.job).toMatchObject({ state: "failed", finishedAtMs: 1000, reason: "task jx-0 exited with code 3" });
    expect(r.job?.tasks[0]).toMatchObject({ state: "failed", exitCode: 3, finishedAtMs: 900 });
    expect(r.final).toBe(true);
  });

  it("succeeds the job only when every task succeeded", () => {
    const two = job(2);
    const one = foldStatus(two, report("succeeded"), 500).job!;
    expect(one.state).toBe("running"); // domain rule: a succeeded task counts as progress
    const both = foldStatus(one, report("succeeded", { taskId: "jx-1" }), 600).job!;
    expect(both.state).toBe("succeeded");
  });

  it("treats a cancel the tenant did not ask for as a preemption to re-place", () => {
    const r = foldStatus(job(), report("cancelled"), 500);
    expect(r.job?.tasks[0]?.state).toBe("preempted");
    expect(r.job?.state).toBe("rescheduling");
  });

  it("cancels the job when the tenant asked and every task stopped", () => {
    const r = foldStatus(job(1, { cancelRequested: true }), report("cancelled"), 500);
    expect(r.job?.state).toBe("cancelled");
  });

  it("keeps a final task final, but still reports a final report as final for cleanup", () => {
    const done = foldStatus(job(), report("succeeded"), 500).job!;
    expect(foldStatus(done, report("succeeded"), 600)).toEqual({ verdict: "unchanged", final: true });
  });

  it("reports unknown tasks", () => {
    expect(foldStatus(job(), report("running", { taskId: "jx-9" }), 1).verdict).toBe("unknown-task");
  });

  it("keeps a running task's checkpoint: forward only, clamped to the scheduler's window", () => {
    const running = foldStatus(job(), report("running"), 200).job!;
    expect(running.tasks[0]!.lastCheckpointMs).toBe(0);
    const first = foldStatus(running, report("running", { lastCheckpointMs: 250 }), 300);
    expect(first.verdict).toBe("applied");
    expect(first.job!.tasks[0]).toMatchObject({ state: "running", lastCheckpointMs: 250 });
    // Redelivered or older: nothing changes.
    expect(foldStatus(first.job!, report("running", { lastCheckpointMs: 250 }), 400).verdict).toBe("unchanged");
    expect(foldStatus(first.job!, report("running", { lastCheckpointMs: 240 }), 400).verdict).toBe("unchanged");
    // An agent clock ahead of the scheduler's cannot claim a checkpoint from the future.
    const ahead = foldStatus(first.job!, report("running", { lastCheckpointMs: 9_000 }), 500);
    expect(ahead.job!.tasks[0]!.lastCheckpointMs).toBe(500);
    // Nor one from before the task started.
    const fresh = foldStatus(job(), report("running", { lastCheckpointMs: 5 }), 200).job!;
    expect(fresh.tasks[0]!.lastCheckpointMs).toBe(100);
  });
});

describe("foldStatus: checkpoints", () => {
  const reported = {
    name: "step-3",
    sizeBytes: 12,
    createdAtMs: 150,
    // What the agent claims about the run is replaced by the fenced report's identity.
    taskId: "other-task",
    epoch: 99,
    agentId: "liar",
    attempt: 7,
    copy: "stored" as const,
    copyNote: "",
    object: "someone-elses-object",
  };

  it("keeps the newest complete checkpoint with the run's identity from the fenced report", () => {
    const running = foldStatus(job(), report("running"), 200).job!;
    const r = foldStatus(running, report("running", { checkpoint: reported }), 300);
    expect(r.verdict).toBe("applied");
    expect(r.job!.tasks[0]!.checkpoint).toEqual({
      name: "step-3",
      sizeBytes: 12,
      createdAtMs: 150,
      taskId: "jx-0",
      epoch: 5,
      agentId: "a1",
      attempt: 1,
      copy: "agent",
      copyNote: "",
      object: "",
    });
    // The same checkpoint again changes nothing; an older one is not taken.
    expect(foldStatus(r.job!, report("running", { checkpoint: reported }), 400).verdict).toBe("unchanged");
    const older = { ...reported, name: "step-2", createdAtMs: 100 };
    expect(foldStatus(r.job!, report("running", { checkpoint: { ...older, name: "step-3" } }), 400).verdict).toBe(
      "unchanged",
    );
  });

  it("takes the checkpoint of a final report, and refuses unsafe names", () => {
    const running = foldStatus(job(), report("running"), 200).job!;
    const done = foldStatus(running, report("failed", { exitCode: 1, checkpoint: reported }), 300).job!;
    expect(done.tasks[0]!.checkpoint?.name).toBe("step-3");
    for (const name of ["../x", ".tmp", "a/b", ""]) {
      const r = foldStatus(running, report("running", { checkpoint: { ...reported, name } }), 300);
      expect(r.verdict, name).toBe("unchanged");
    }
  });
});

describe("foldStatus: where the checkpoint's copy is", () => {
  const base = {
    name: "step-3",
    sizeBytes: 12,
    createdAtMs: 150,
    taskId: "jx-0",
    epoch: 5,
    agentId: "a1",
    attempt: 1,
    copyNote: "10 KiB in 1 chunk(s)",
  };
  it("believes 'stored' only for this task's own object; keeps too-large with its note", () => {
    const running = foldStatus(job(), report("running"), 200).job!;
    const own = { ...base, copy: "stored" as const, object: "jx-0/5/step-3" };
    expect(foldStatus(running, report("running", { checkpoint: own }), 300).job!.tasks[0]!.checkpoint).toMatchObject({
      copy: "stored",
      object: "jx-0/5/step-3",
    });
    const foreign = { ...own, object: "other-0/5/step-3" };
    expect(
      foldStatus(running, report("running", { checkpoint: foreign }), 300).job!.tasks[0]!.checkpoint,
    ).toMatchObject({ copy: "agent", object: "" });
    const big = { ...base, copy: "too-large" as const, copyNote: "over the limit", object: "" };
    expect(foldStatus(running, report("running", { checkpoint: big }), 300).job!.tasks[0]!.checkpoint).toMatchObject({
      copy: "too-large",
      copyNote: "over the limit",
    });
  });

  it("records lineage once, from what the agent says it resumed from, and only the checkpoint the task holds", () => {
    const held = { ...base, copy: "stored" as const, object: "jx-0/5/step-3", epoch: 3 };
    const j = job();
    j.tasks[0]!.checkpoint = held;
    const resumed = foldStatus(j, report("running", { resumedFrom: held }), 300).job!;
    expect(resumed.tasks[0]!.resumedFrom?.name).toBe("step-3");
    expect(resumed.lineage).toHaveLength(1);
    expect(foldStatus(resumed, report("running", { resumedFrom: held }), 400).verdict).toBe("unchanged");
    const other = foldStatus(j, report("running", { resumedFrom: { ...held, name: "step-9" } }), 300);
    expect(other.job?.lineage ?? []).toHaveLength(0);
    const fresh = foldStatus(j, report("running", { resumeNote: "cannot resume: missing" }), 300).job!;
    expect(fresh.tasks[0]!.resumeNote).toBe("cannot resume: missing");
    expect(fresh.lineage ?? []).toHaveLength(0);
  });

  it("a gang's worker resuming from another rank's checkpoint is recorded when that is what it was offered", () => {
    const rank0 = { ...base, copy: "stored" as const, object: "jx-0/3/step-3", epoch: 3 };
    const j = job(3);
    j.tasks[0]!.checkpoint = rank0;
    j.tasks[2]!.resumeFrom = rank0; // the placement offered rank 0's checkpoint to rank 2
    // Rank 0 meanwhile reports a newer checkpoint of the new generation: the offer still identifies rank 2's.
    j.tasks[0]!.checkpoint = { ...rank0, name: "step-6", epoch: 5, object: "jx-0/5/step-6" };
    const r2 = (extra: Partial<TaskStatusReport>) => report("running", { taskId: "jx-2", ...extra });
    const resumed = foldStatus(j, r2({ resumedFrom: rank0 }), 300).job!;
    expect(resumed.tasks[2]!.resumedFrom).toMatchObject({ taskId: "jx-0", name: "step-3", epoch: 3 });
    expect(resumed.lineage).toEqual([
      expect.objectContaining({ taskId: "jx-2", epoch: 5, resumedFrom: expect.objectContaining({ taskId: "jx-0" }) }),
    ]);
    // A checkpoint it was not offered (rank 0's newer one) is not put into the lineage.
    const lied = foldStatus(j, r2({ resumedFrom: j.tasks[0]!.checkpoint }), 300);
    expect(lied.job?.lineage ?? []).toHaveLength(0);
  });
});
