import { type Checkpoint, defaultJobSpec, type Job, newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { testJob } from "../jobs/job.test-helper.js";
import { gangCheckpoint, recordLineage, resumeDecision, resumeDecisions } from "./resume.js";

const checkpoint = (extra: Partial<Checkpoint> = {}): Checkpoint => ({
  name: "step-30",
  sizeBytes: 1024,
  createdAtMs: 5000,
  taskId: "jx-0",
  epoch: 4,
  agentId: "a1",
  attempt: 1,
  copy: "agent",
  copyNote: "",
  object: "",
  ...extra,
});

function job(withPolicy: boolean, c?: Checkpoint): Job {
  return testJob("jx", {
    spec: defaultJobSpec(withPolicy ? { checkpoint: { dir: "", everySeconds: 0 } } : {}),
    state: "rescheduling",
    tasks: [{ ...newTask("jx", 0), ...(c && { checkpoint: c }) }],
  });
}

describe("resumeDecision", () => {
  it("nothing without a checkpoint policy or without a checkpoint", () => {
    expect(resumeDecision(job(false, checkpoint()), job(false, checkpoint()).tasks[0]!, "a1")).toEqual({});
    const j = job(true);
    expect(resumeDecision(j, j.tasks[0]!, "a1")).toEqual({});
  });

  it("resumes on the agent that wrote it, and anywhere once stored", () => {
    const local = job(true, checkpoint());
    expect(resumeDecision(local, local.tasks[0]!, "a1").resumeFrom?.name).toBe("step-30");
    const stored = job(true, checkpoint({ copy: "stored", object: "jx/jx-0/4/step-30" }));
    expect(resumeDecision(stored, stored.tasks[0]!, "a2").resumeFrom?.object).toBe("jx/jx-0/4/step-30");
  });

  it("starts fresh elsewhere with a note naming why", () => {
    const big = job(true, checkpoint({ copy: "too-large", copyNote: "2.0 GiB > copy limit 64 MiB" }));
    const d = resumeDecision(big, big.tasks[0]!, "a2");
    expect(d.resumeFrom).toBeUndefined();
    expect(d.note).toBe(
      "checkpoint step-30 is too large to copy between agents (2.0 GiB > copy limit 64 MiB); this run on a2 starts fresh",
    );
    const pending = job(true, checkpoint());
    expect(resumeDecision(pending, pending.tasks[0]!, "a2").note).toMatch(/not yet copied off agent a1/);
  });

  it("records lineage: which run resumed from which checkpoint of which run", () => {
    const j = job(true, checkpoint());
    const t = { ...j.tasks[0]!, epoch: 6, agentId: "a2" };
    j.attempt = 2;
    recordLineage(j, t, checkpoint(), 9000);
    expect(j.lineage).toEqual([
      { taskId: "jx-0", epoch: 6, agentId: "a2", attempt: 2, resumedFrom: checkpoint(), atMs: 9000 },
    ]);
  });
});

/** A training gang of `n` tasks; `checkpoints[i]` is rank i's newest. */
function gang(n: number, checkpoints: (Checkpoint | undefined)[], kind: "training" | "batch" = "training"): Job {
  const j = job(true);
  j.spec = defaultJobSpec({ kind, replicas: n, checkpoint: { dir: "", everySeconds: 0 } });
  j.tasks = Array.from({ length: n }, (_, i) => ({
    ...newTask("jx", i),
    ...(checkpoints[i] && { checkpoint: checkpoints[i] }),
  }));
  return j;
}
const stored = (taskId: string, name: string, createdAtMs: number, agentId = "a1"): Checkpoint =>
  checkpoint({ taskId, name, createdAtMs, agentId, copy: "stored", object: `${taskId}/4/${name}` });

describe("resumeDecisions: a training gang resumes from one checkpoint", () => {
  it("every worker of a grown generation, the added ones included, gets the newest checkpoint any rank reported", () => {
    // Generation 1 ran ranks 0 and 1 (rank 0 saves, as torchrun scripts do); ranks 2 and 3 are added by the grow.
    const j = gang(4, [stored("jx-0", "step-40", 9000), stored("jx-1", "step-30", 7000)]);
    const d = resumeDecisions(
      j,
      ["a1", "a2", "a3", "a4"].map((agentId, replica) => ({ replica, agentId })),
    );
    expect([...d.keys()]).toEqual([0, 1, 2, 3]);
    for (const r of d.values()) expect(r.resumeFrom).toMatchObject({ taskId: "jx-0", name: "step-40" });
  });

  it("a shrink's re-placement resumes from the lost rank's checkpoint when it is the newest", () => {
    const j = gang(4, [stored("jx-0", "step-8", 8000), undefined, undefined, stored("jx-3", "step-9", 9000, "gone")]);
    const d = resumeDecisions(
      j,
      [0, 1, 2].map((replica) => ({ replica, agentId: `a${replica}` })),
    );
    for (const r of d.values()) expect(r.resumeFrom).toMatchObject({ taskId: "jx-3", name: "step-9" });
  });

  it("a later run's checkpoint wins over an earlier run's whatever the agents' clocks say", () => {
    // Rank 1's agent clock runs ahead: its checkpoint of generation 1 (epoch 4) looks newer than rank 0's of epoch 7.
    const j = gang(2, [{ ...stored("jx-0", "step-40", 8000), epoch: 7 }, stored("jx-1", "step-20", 9000)]);
    expect(gangCheckpoint(j, ["a1"])).toMatchObject({ taskId: "jx-0", name: "step-40" });
  });

  it("a tie goes to the lower rank; one usable by every placed agent wins over a newer one that is not", () => {
    const tie = gang(2, [stored("jx-0", "step-5", 5000), stored("jx-1", "step-5b", 5000)]);
    expect(gangCheckpoint(tie, ["a1"])?.taskId).toBe("jx-0");
    const localOnly = checkpoint({ taskId: "jx-1", name: "step-6", createdAtMs: 6000, agentId: "a2" });
    const j = gang(2, [stored("jx-0", "step-5", 5000), localOnly]);
    expect(gangCheckpoint(j, ["a1", "a2"])?.name).toBe("step-5");
    // Usable nowhere but on its agent and nothing else: the newest anyway; the others start fresh, saying why.
    const only = gang(2, [undefined, localOnly]);
    const d = resumeDecisions(only, [
      { replica: 0, agentId: "a1" },
      { replica: 1, agentId: "a2" },
    ]);
    expect(d.get(1)!.resumeFrom?.name).toBe("step-6");
    expect(d.get(0)!.note).toMatch(/step-6 was not yet copied off agent a2; this run on a1 starts fresh/);
  });

  it("tasks of other kinds, and a single training task, keep their own checkpoint", () => {
    const batch = gang(2, [stored("jx-0", "step-5", 5000)], "batch");
    const d = resumeDecisions(batch, [
      { replica: 0, agentId: "a1" },
      { replica: 1, agentId: "a2" },
    ]);
    expect(d.get(0)!.resumeFrom?.name).toBe("step-5");
    expect(d.get(1)).toEqual({});
    const single = gang(1, [stored("jx-0", "step-5", 5000)]);
    expect(resumeDecision(single, single.tasks[0]!, "a9").resumeFrom?.name).toBe("step-5");
  });
});
