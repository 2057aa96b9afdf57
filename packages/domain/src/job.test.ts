import { describe, expect, it } from "vitest";
import { foldJobState, type Job, jobIdOfTask, newTask, type TaskState, taskIdFor } from "./job.js";

function job(states: TaskState[], extra: Partial<Job> = {}): Pick<Job, "tasks" | "cancelRequested" | "state"> {
  return {
    state: "pending",
    cancelRequested: false,
    tasks: states.map((state, i) => ({ ...newTask("j1", i), state })),
    ...extra,
  };
}

describe("foldJobState", () => {
  it.each<[TaskState[], Partial<Job>, string]>([
    [["pending", "pending"], {}, "pending"],
    [["assigned", "pending"], {}, "placed"],
    [["starting", "assigned"], {}, "placed"],
    [["running", "assigned"], {}, "running"],
    [["succeeded", "running"], {}, "running"],
    [["succeeded", "succeeded"], {}, "succeeded"],
    [["succeeded", "failed"], {}, "failed"],
    [["running", "lost"], {}, "rescheduling"],
    [["running", "preempted"], {}, "rescheduling"],
    [["running", "cancelled"], { cancelRequested: true }, "pending"],
    [["cancelled", "cancelled"], { cancelRequested: true }, "cancelled"],
    [["pending"], { cancelRequested: true }, "cancelled"],
    [["running"], { state: "succeeded" }, "succeeded"],
  ])("%j %j → %s", (states, extra, expected) => {
    expect(foldJobState(job(states, extra))).toBe(expected);
  });
});

describe("task ids", () => {
  it("are one NATS token and map back to their job", () => {
    const id = taskIdFor("jabc-def", 3);
    expect(id).toBe("jabc-def-3");
    expect(jobIdOfTask(id)).toBe("jabc-def");
  });
});
