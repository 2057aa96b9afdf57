import { defaultJobSpec, type Job, type JobState } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { expiredJobs, isExpired } from "./policy.js";

const job = (state: JobState, finishedAtMs: number, id = "j"): Job => ({
  id,
  tenant: "t",
  requestId: "",
  spec: defaultJobSpec(),
  state,
  reason: "",
  tasks: [],
  createdAtMs: 0,
  updatedAtMs: 0,
  finishedAtMs,
  cancelRequested: false,
  spent: 0,
  reserved: 0,
});

describe("retention policy", () => {
  it.each([
    ["succeeded long ago", "succeeded", 1_000, true],
    ["failed long ago", "failed", 1_000, true],
    ["cancelled just now", "cancelled", 9_500, false],
    ["exactly at the retention", "succeeded", 9_000, true],
    ["running, however old", "running", 1, false],
    ["pending, however old", "pending", 1, false],
    ["final without a finish time", "succeeded", 0, false],
  ] as const)("%s", (_name, state, finishedAtMs, expired) => {
    expect(isExpired(job(state, finishedAtMs), 10_000, 1_000)).toBe(expired);
  });

  it("picks the oldest first, at most the batch", () => {
    const entries = [
      job("succeeded", 300, "c"),
      job("running", 1, "r"),
      job("failed", 100, "a"),
      job("succeeded", 200, "b"),
    ].map((j) => ({ job: j }));
    expect(expiredJobs(entries, 10_000, 1_000, 2).map((e) => e.job.id)).toEqual(["a", "b"]);
  });
});
