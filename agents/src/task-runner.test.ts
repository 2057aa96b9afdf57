import type { TaskAssignment } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { checkpointFile, taskEnv, taskWorkingDir } from "./task-runner.js";

const assignment = (extra: Partial<TaskAssignment> = {}): TaskAssignment => ({
  taskId: "j1-2",
  jobId: "j1",
  replica: 2,
  gpuIndices: [3, 1],
  template: {
    command: ["train"],
    env: { LR: "0.1", CUDA_VISIBLE_DEVICES: "0,1,2,3,4,5,6,7" },
    workingDir: "",
    killGraceSeconds: 0,
  },
  epoch: 7,
  pricePerGpuHour: 0,
  tenant: "t",
  assignedAtMs: 0,
  stop: false,
  stopReason: "",
  ...extra,
});

describe("taskEnv", () => {
  it("passes only allow-listed agent variables, then the template, then capa's own (not overridable)", () => {
    const env = taskEnv(assignment(), ["PATH", "HOME"], {
      PATH: "/bin",
      HOME: "/home/agent",
      CAPA_NATS_URL: "nats://secret",
      NATS_TOKEN: "s3cret",
    });
    expect(env).toEqual({
      PATH: "/bin",
      HOME: "/home/agent",
      LR: "0.1",
      CUDA_VISIBLE_DEVICES: "3,1",
      CUDA_DEVICE_ORDER: "PCI_BUS_ID",
      CAPA_TASK_ID: "j1-2",
      CAPA_JOB_ID: "j1",
      CAPA_REPLICA: "2",
      CAPA_EPOCH: "7",
    });
  });

  it("names the checkpoint signal file in the task's own dir, and the template cannot override it", () => {
    const a = assignment({ template: { ...assignment().template, env: { CAPA_CHECKPOINT_FILE: "/etc/passwd" } } });
    const file = checkpointFile(a, "/var/capa");
    expect(file).toBe("/var/capa/tasks/j1-2/.capa-checkpoint");
    expect(taskEnv(a, [], {}, file).CAPA_CHECKPOINT_FILE).toBe(file);
  });

  it("gives a gang worker torchrun's rendezvous env, which the template cannot override", () => {
    const rendezvous = {
      generation: 3,
      worldSize: 4,
      rank: 2,
      localRank: 0,
      localWorldSize: 1,
      masterAddr: "node-a",
      masterPort: 29733,
    };
    const a = assignment({ rendezvous, template: { ...assignment().template, env: { RANK: "0", WORLD_SIZE: "1" } } });
    expect(taskEnv(a, [], {})).toMatchObject({
      MASTER_ADDR: "node-a",
      MASTER_PORT: "29733",
      WORLD_SIZE: "4",
      RANK: "2",
      LOCAL_RANK: "0",
      LOCAL_WORLD_SIZE: "1",
      GROUP_RANK: "2",
      CAPA_GENERATION: "3",
    });
    expect(taskEnv(assignment(), [], {}).RANK).toBeUndefined();
  });

  it("sets an empty CUDA_VISIBLE_DEVICES for a task without GPUs (hides every GPU)", () => {
    expect(taskEnv(assignment({ gpuIndices: [] }), [], {}).CUDA_VISIBLE_DEVICES).toBe("");
  });
});

describe("taskWorkingDir", () => {
  const tpl = (workingDir: string) => ({ ...assignment().template, workingDir });
  it("defaults to a per-task dir under the work dir", () => {
    expect(taskWorkingDir(assignment(), "/var/capa")).toBe("/var/capa/tasks/j1-2");
  });
  it("keeps an absolute template dir and resolves a relative one inside the task dir", () => {
    expect(taskWorkingDir(assignment({ template: tpl("/data/run") }), "/var/capa")).toBe("/data/run");
    expect(taskWorkingDir(assignment({ template: tpl("out") }), "/var/capa")).toBe("/var/capa/tasks/j1-2/out");
  });
});
