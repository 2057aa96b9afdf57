import { type Checkpoint, defaultJobSpec, type Job, newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { recordLineage, resumeDecision } from "./resume.js";

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
  return {
    id: "jx",
    tenant: "acme",
    requestId: "",
    spec: defaultJobSpec(withPolicy ? { checkpoint: { dir: "", everySeconds: 0 } } : {}),
    state: "rescheduling",
    reason: "",
    tasks: [{ ...newTask("jx", 0), ...(c && { checkpoint: c }) }],
    createdAtMs: 1,
    updatedAtMs: 1,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
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
