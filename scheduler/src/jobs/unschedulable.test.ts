import { defaultJobSpec, type Job, newTask } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { unschedulableVerdict } from "./unschedulable.js";

function job(failAfter: number | undefined, taskStates: Job["tasks"][number]["state"][] = ["pending"]): Job {
  return {
    id: "j1",
    tenant: "t",
    requestId: "",
    spec: defaultJobSpec({
      gpusPerReplica: 64,
      template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 10 },
      ...(failAfter !== undefined ? { failIfUnschedulableAfterSeconds: failAfter } : {}),
    }),
    state: "pending",
    reason: "waiting for placement",
    tasks: taskStates.map((state, i) => ({ ...newTask("j1", i), state })),
    createdAtMs: 1_000,
    updatedAtMs: 1_000,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

describe("unschedulableVerdict", () => {
  it.each([
    ["no option: waits, saying UNSCHEDULABLE", undefined, 100_000, "pending"],
    ["option not yet due", 60, 60_999, "pending"],
    ["option due", 60, 61_000, "failed"],
  ])("%s", (_name, failAfter, nowMs, state) => {
    const v = unschedulableVerdict(job(failAfter), ["capacity: 3 agents"], "", nowMs)!;
    expect(v.reason).toBe("UNSCHEDULABLE: no agent could ever hold this job: capacity: 3 agents");
    expect(v.failed?.state ?? "pending").toBe(state);
    if (v.failed) {
      expect(v.failed.reason).toMatch(/^UNSCHEDULABLE: .*failed after 60s/);
      expect(v.failed.finishedAtMs).toBe(nowMs);
      expect(v.failed.tasks.every((t) => t.state === "failed")).toBe(true);
    }
  });

  it("does not apply to a job with a task placed once", () => {
    expect(unschedulableVerdict(job(1, ["running", "pending"]), [], "", 1e9)).toBeUndefined();
  });

  it("names the relaxation that would make it fit", () => {
    expect(unschedulableVerdict(job(0), ["x"], "allow_fabric_spanning", 0)?.reason).toContain(
      "(it would fit with: allow_fabric_spanning)",
    );
  });
});
