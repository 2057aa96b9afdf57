import type { TaskAssignment } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { ContainerDriver, containerName } from "./container.js";
import { processDriver } from "./process.js";

const assignment = (over: Partial<TaskAssignment> = {}): TaskAssignment => ({
  taskId: "jabc-1",
  jobId: "jabc",
  replica: 1,
  gpuIndices: [2, 3],
  template: {
    command: ["python", "train.py", "--lr", "3e-4"],
    env: {},
    workingDir: "",
    killGraceSeconds: 5,
    image: "localhost/trainer:1",
  },
  epoch: 42,
  pricePerGpuHour: 0,
  tenant: "t",
  assignedAtMs: 0,
  stop: false,
  stopReason: "",
  ...over,
});

const TASK_DIR = "/work/tasks/jabc-1";
const ENV = { PATH: "/usr/bin", HOME: "/root", CUDA_VISIBLE_DEVICES: "2,3", SECRET: "s3cr3t", CAPA_TASK_ID: "jabc-1" };

describe("container driver", () => {
  it("runs the image with --init, labels, the task dir mounted at the same path, and the task's argv", () => {
    const d = new ContainerDriver({ runtime: "podman", agentId: "a1", gpuMode: "cdi" });
    const run = d.run(assignment(), ENV, TASK_DIR, TASK_DIR);
    expect(run.command).toEqual([
      "podman",
      "run",
      "--rm",
      "--init",
      "--name",
      "capa-jabc-1-42",
      "--label",
      "capa.agent=a1",
      "--label",
      "capa.task=jabc-1",
      "--volume",
      `${TASK_DIR}:${TASK_DIR}`,
      "--workdir",
      TASK_DIR,
      "--device",
      "nvidia.com/gpu=2",
      "--device",
      "nvidia.com/gpu=3",
      "--env",
      "CAPA_GPU_INDICES",
      "--env",
      "CAPA_TASK_ID",
      "--env",
      "CUDA_VISIBLE_DEVICES",
      "--env",
      "SECRET",
      "localhost/trainer:1",
      "python",
      "train.py",
      "--lr",
      "3e-4",
    ]);
  });

  it("passes values by name only: no value is on the command line, the CLI's environment carries them", () => {
    const d = new ContainerDriver({
      runtime: "podman",
      agentId: "a1",
      gpuMode: "env",
      runtimeEnv: { CONTAINERS_CONF: "/c" },
    });
    const run = d.run(assignment(), ENV, TASK_DIR, TASK_DIR);
    expect(run.command.join(" ")).not.toContain("s3cr3t");
    expect(run.env).toMatchObject({
      SECRET: "s3cr3t",
      // Inside, the container's GPUs are numbered from 0; the host's indices stay visible.
      CUDA_VISIBLE_DEVICES: "0,1",
      CAPA_GPU_INDICES: "2,3",
      NVIDIA_VISIBLE_DEVICES: "2,3",
      // The CLI itself needs the host's PATH and its own configuration; the container does not get them.
      PATH: "/usr/bin",
      CONTAINERS_CONF: "/c",
    });
    expect(run.command).not.toContain("--device");
    expect(run.command).toContain("NVIDIA_VISIBLE_DEVICES");
    expect(run.command).not.toContain("PATH");
    expect(run.command).not.toContain("HOME");
  });

  it("a CPU-only task sees no GPU; a working dir outside the task dir is mounted too", () => {
    const d = new ContainerDriver({ runtime: "docker", agentId: "a1", gpuMode: "env" });
    const run = d.run(assignment({ gpuIndices: [] }), {}, "/data/run", TASK_DIR);
    expect(run.env.NVIDIA_VISIBLE_DEVICES).toBe("void");
    expect(run.env.CUDA_VISIBLE_DEVICES).toBe("");
    expect(run.command.slice(0, 2)).toEqual(["docker", "run"]);
    expect(run.command).toContain("/data/run:/data/run");
  });

  it("refuses a task without an image; names are one token per task and epoch", () => {
    const d = new ContainerDriver({ runtime: "podman", agentId: "a1", gpuMode: "cdi" });
    const a = assignment();
    a.template.image = "";
    expect(() => d.run(a, {}, TASK_DIR, TASK_DIR)).toThrow("needs an image");
    expect(containerName({ taskId: "j-1", epoch: 7 })).toBe("capa-j-1-7");
  });

  it("the process driver runs the argv as it is", () => {
    expect(processDriver.run(assignment(), ENV, TASK_DIR, TASK_DIR)).toEqual({
      command: ["python", "train.py", "--lr", "3e-4"],
      env: ENV,
    });
  });
});

describe("container driver: data and checkpoint mounts", () => {
  it("mounts staged data read-only at its target with the env naming the inside path; other mounts read-write", () => {
    const d = new ContainerDriver({ runtime: "podman", agentId: "a1", gpuMode: "env" });
    const env = { ...ENV, CAPA_DATA_TRAIN: "/datasets/train" };
    const run = d.run(assignment(), env, TASK_DIR, TASK_DIR, [
      { hostPath: "/datasets/train", containerPath: "/data/train", readOnly: true, env: "CAPA_DATA_TRAIN" },
      { hostPath: "/scratch/ckpt", containerPath: "/scratch/ckpt", readOnly: false },
    ]);
    const args = run.command.join(" ");
    expect(args).toContain("--volume /datasets/train:/data/train:ro");
    expect(args).toContain("--volume /scratch/ckpt:/scratch/ckpt ");
    expect(run.command).toContain("CAPA_DATA_TRAIN");
    // Inside, the variable names the container path; the process driver keeps the host path.
    expect(run.env.CAPA_DATA_TRAIN).toBe("/data/train");
    expect(processDriver.run(assignment(), env, TASK_DIR, TASK_DIR).env.CAPA_DATA_TRAIN).toBe("/datasets/train");
  });
});
