import type { TaskAssignment } from "@capa/domain";
import { describe, expect, it } from "vitest";
import {
  type AgentGpuView,
  type FinishedTaskView,
  type ReconcileAction,
  type RunningTaskView,
  reconcile,
} from "./reconciler.js";

function task(taskId: string, gpuIndices: number[], extra: Partial<TaskAssignment> = {}): TaskAssignment {
  return {
    taskId,
    jobId: "j1",
    replica: 0,
    gpuIndices,
    template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 0 },
    epoch: 1,
    pricePerGpuHour: 0,
    tenant: "t",
    assignedAtMs: 0,
    stop: false,
    stopReason: "",
    ...extra,
  };
}
const run = (taskId: string, gpuIndices: number[], epoch = 1, stopping = false): RunningTaskView => ({
  taskId,
  epoch,
  gpuIndices,
  stopping,
});
const done = (taskId: string, epoch = 1, state: FinishedTaskView["state"] = "succeeded"): FinishedTaskView => ({
  taskId,
  epoch,
  state,
});
const gpus = (n: number, failed: number[] = []): AgentGpuView[] =>
  Array.from({ length: n }, (_, index) => ({ index, health: failed.includes(index) ? "failed" : "ok" }));

/** Actions in a compact, comparable form. */
function line(a: ReconcileAction): string {
  switch (a.type) {
    case "start":
      return `start ${a.assignment.taskId}`;
    case "stop":
      return `stop ${a.taskId}@${a.epoch}: ${a.reason}`;
    case "reject":
      return `reject ${a.assignment.taskId}: ${a.message}`;
    case "cancel-unstarted":
      return `cancel ${a.assignment.taskId}: ${a.message}`;
    case "republish":
      return `republish ${a.taskId}@${a.epoch}`;
    case "forget":
      return `forget ${a.taskId}`;
    case "wait":
      return `wait ${a.taskId}: ${a.reason}`;
  }
}
const summary = (actions: ReconcileAction[]) => actions.map(line);

interface Case {
  name: string;
  desired: TaskAssignment[];
  running?: RunningTaskView[];
  finished?: FinishedTaskView[];
  gpus?: AgentGpuView[];
  expected: string[];
}

const cases: Case[] = [
  { name: "nothing to do", desired: [], expected: [] },
  { name: "starts a new task", desired: [task("a", [1, 3])], expected: ["start a"] },
  { name: "starts a CPU-only task (no GPUs)", desired: [task("a", [])], gpus: [], expected: ["start a"] },
  { name: "keeps a running task of the same epoch", desired: [task("a", [0])], running: [run("a", [0])], expected: [] },
  {
    name: "stops a task no longer listed",
    desired: [],
    running: [run("a", [0])],
    expected: ["stop a@1: no longer assigned to this agent"],
  },
  {
    name: "stops a task marked stop, with its reason",
    desired: [task("a", [0], { stop: true, stopReason: "cancelled by tenant" })],
    running: [run("a", [0])],
    expected: ["stop a@1: cancelled by tenant"],
  },
  {
    name: "does not stop twice",
    desired: [task("a", [0], { stop: true })],
    running: [run("a", [0], 1, true)],
    expected: [],
  },
  {
    name: "stops a stale epoch and waits for it before starting the new one",
    desired: [task("a", [0], { epoch: 2 })],
    running: [run("a", [0], 1)],
    expected: ["stop a@1: superseded by epoch 2", "wait a: epoch 1 is still stopping"],
  },
  {
    name: "starts the new epoch once the old one has finished",
    desired: [task("a", [0], { epoch: 2 })],
    finished: [done("a", 1, "cancelled")],
    expected: ["start a"],
  },
  {
    name: "stops a running epoch newer than the desired one (desired state is the truth)",
    desired: [task("a", [0], { epoch: 1 })],
    running: [run("a", [0], 3)],
    expected: ["stop a@3: desired state lists an older epoch 1"],
  },
  {
    name: "re-publishes a final state still listed instead of running it again",
    desired: [task("a", [0])],
    finished: [done("a")],
    expected: ["republish a@1"],
  },
  {
    name: "ignores an assignment older than what already finished here",
    desired: [task("a", [0], { epoch: 1 })],
    finished: [done("a", 2)],
    expected: [],
  },
  {
    name: "forgets finished tasks that are no longer listed",
    desired: [],
    finished: [done("a"), done("b", 1, "rejected")],
    expected: ["forget a", "forget b"],
  },
  {
    name: "reports a stop for a task it never started as cancelled",
    desired: [task("a", [0], { stop: true, stopReason: "preempted" })],
    expected: ["cancel a: preempted"],
  },
  {
    name: "re-publishes (not re-cancels) a stopped task that already finished",
    desired: [task("a", [0], { stop: true })],
    finished: [done("a", 1, "cancelled")],
    expected: ["republish a@1"],
  },
  {
    name: "rejects more GPUs than the agent has",
    desired: [task("a", [0, 1, 2, 3, 4])],
    expected: ["reject a: needs 5 GPUs; this agent has 4"],
  },
  {
    name: "rejects an index the agent does not have",
    desired: [task("a", [2, 7])],
    expected: ["reject a: GPU index 7 does not exist on this agent (it has 0,1,2,3)"],
  },
  {
    name: "rejects a duplicated index",
    desired: [task("a", [1, 1])],
    expected: ["reject a: GPU index 1 is listed twice"],
  },
  {
    name: "rejects a failed GPU",
    desired: [task("a", [1])],
    gpus: gpus(4, [1]),
    expected: ["reject a: GPU 1 is failed"],
  },
  {
    name: "rejects more GPUs than are free",
    desired: [task("a", [0, 1, 2]), task("b", [2, 3])],
    running: [run("a", [0, 1, 2])],
    expected: ["reject b: needs 2 GPUs but only 1 are free"],
  },
  {
    name: "rejects an overlap with a task that keeps running",
    desired: [task("a", [0]), task("b", [0])],
    running: [run("a", [0])],
    expected: ["reject b: GPU 0 already in use by task a"],
  },
  {
    name: "rejects an overlap between two new tasks, first come first served",
    desired: [task("a", [0, 1]), task("b", [1, 2])],
    expected: ["start a", "reject b: GPU 1 already in use by task a"],
  },
  {
    name: "waits (does not reject) when the GPUs belong to a task that is stopping",
    desired: [task("b", [0, 1])],
    running: [run("a", [0, 1])],
    expected: ["stop a@1: no longer assigned to this agent", "wait b: GPU 0,1 held by stopping task a"],
  },
  {
    name: "rejects an empty command",
    desired: [task("a", [0], { template: { command: [], env: {}, workingDir: "", killGraceSeconds: 0 } })],
    expected: ["reject a: empty command"],
  },
  {
    name: "keeps the highest epoch of a task listed twice",
    desired: [task("a", [0], { epoch: 1 }), task("a", [1], { epoch: 2 })],
    expected: ["start a"],
  },
];

describe("reconcile", () => {
  it.each(cases)("$name", (c) => {
    const actions = reconcile({
      desired: c.desired,
      running: c.running ?? [],
      finished: c.finished ?? [],
      gpus: c.gpus ?? gpus(4),
    });
    expect(summary(actions)).toEqual(c.expected);
  });

  it("starts the de-duplicated assignment with the highest epoch", () => {
    const [action] = reconcile({
      desired: [task("a", [0], { epoch: 1 }), task("a", [1], { epoch: 2 })],
      running: [],
      finished: [],
      gpus: gpus(2),
    });
    expect(action?.type === "start" && [action.assignment.epoch, action.assignment.gpuIndices]).toEqual([2, [1]]);
  });

  it("is idempotent: applying nothing and running again yields the same actions", () => {
    const input = { desired: [task("a", [0]), task("b", [0])], running: [run("c", [1])], finished: [], gpus: gpus(2) };
    expect(reconcile(input)).toEqual(reconcile(input));
  });
});
