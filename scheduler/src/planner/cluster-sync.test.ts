import { defaultJobSpec, type Job, newTask, type TaskAssignment } from "@capa/domain";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { checkpointSync, clusterSync } from "./cluster-sync.js";
import { type AgentView, createPlacement } from "./engine.js";

const NOW = 1_700_000_000_000;
const log = pino({ level: "silent" });

function agentView(id: string): AgentView {
  return {
    id,
    region: "eu-west",
    zone: "",
    provider: id,
    fabricDomain: "",
    residency: "eu",
    labels: {},
    reliability: 1,
    gpus: [0, 1].map((index) => ({ index, model: "H100-80GB", vramMib: 81_920, healthy: true })),
    prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
    lastSeenMs: NOW,
    draining: false,
    simulated: true,
  };
}

function listing(taskId: string, extra: Partial<TaskAssignment> = {}): TaskAssignment {
  return {
    taskId,
    jobId: taskId.replace(/-\d+$/, ""),
    replica: 0,
    gpuIndices: [0, 1],
    template: { command: ["sleep"], env: {}, workingDir: "", killGraceSeconds: 0 },
    epoch: 3,
    pricePerGpuHour: 1_200_000,
    tenant: "t",
    assignedAtMs: NOW - 600_000,
    stop: false,
    stopReason: "",
    ...extra,
  };
}

/** A running job whose one task holds `agentId`'s GPUs under epoch 3, checkpointed at `checkpointMs`. */
function runningJob(id: string, agentId: string, checkpointMs: number): Job {
  const task = { ...newTask(id, 0), state: "running" as const, agentId, epoch: 3, lastCheckpointMs: checkpointMs };
  return {
    id,
    tenant: "t",
    requestId: "",
    spec: defaultJobSpec({ gpusPerReplica: 2, interruptible: true }),
    state: "running",
    reason: "",
    tasks: [task],
    createdAtMs: NOW - 700_000,
    updatedAtMs: NOW,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

function setup() {
  const { cluster, engine } = createPlacement();
  const listed = new Map<string, { agentId: string; assignment: TaskAssignment }[]>();
  const sync = clusterSync(cluster, () => ({ priority: 0, interruptible: true }), log);
  const apply = (agentId: string, before: TaskAssignment[], after: TaskAssignment[]) => {
    for (const t of before) listed.delete(t.taskId);
    for (const t of after) listed.set(t.taskId, [{ agentId, assignment: t }]);
    sync(agentId, before, after);
  };
  const checkpoints = checkpointSync(cluster, (taskId) => listed.get(taskId) ?? []);
  for (const id of ["a", "b"]) cluster.upsertAgent(agentView(id));
  return { cluster, engine, apply, checkpoints };
}

describe("clusterSync", () => {
  it("holds a listing marked stop as a stopping allocation, keeping its GPUs and its checkpoint", () => {
    const { cluster, apply, checkpoints } = setup();
    apply("a", [], [listing("x-0")]);
    checkpoints(runningJob("x", "a", NOW - 1_000));
    expect(cluster.allocation("x-0")).toMatchObject({ lastCheckpointMs: NOW - 1_000 });
    expect(cluster.allocation("x-0")?.stopping).toBeUndefined();

    apply("a", [listing("x-0")], [listing("x-0", { stop: true, stopReason: "preempted" })]);
    expect(cluster.allocation("x-0")).toMatchObject({ stopping: true, lastCheckpointMs: NOW - 1_000 });
    expect(cluster.freeGpuIndices("a")).toEqual([]);
    expect(cluster.stoppingAllocations().map((a) => a.taskId)).toEqual(["x-0"]);

    apply("a", [listing("x-0", { stop: true })], []);
    expect(cluster.allocation("x-0")).toBeUndefined();
    expect(cluster.freeGpuIndices("a")).toEqual([0, 1]);
  });

  it("takes a job's checkpoint only for the task's current allocation (same agent and epoch)", () => {
    const { cluster, apply, checkpoints } = setup();
    apply("a", [], [listing("x-0")]);
    checkpoints({ ...runningJob("x", "a", NOW - 1_000), tasks: [{ ...runningJob("x", "a", 0).tasks[0]!, epoch: 2 }] });
    checkpoints(runningJob("x", "b", NOW - 1_000));
    expect(cluster.allocation("x-0")?.lastCheckpointMs).toBe(0);
  });

  it("feeds reported checkpoints to preemption: of two equal-priced victims, the checkpointed one yields", () => {
    const { cluster, engine, apply, checkpoints } = setup();
    apply("a", [], [listing("old-0")]);
    apply("b", [], [listing("ckpt-0")]);
    const request = { jobId: "urgent", spec: defaultJobSpec({ gpusPerReplica: 2, priority: 5 }), replicas: [0] };
    // Equal price, equal start, no checkpoints: the tie goes by task id.
    expect(engine.place(cluster, request, { nowMs: NOW, seed: 1 }).preemptions.map((p) => p.taskId)).toEqual([
      "ckpt-0",
    ]);
    checkpoints(runningJob("old", "a", NOW - 5_000));
    expect(engine.place(cluster, request, { nowMs: NOW, seed: 1 }).preemptions.map((p) => p.taskId)).toEqual(["old-0"]);
  });
});
