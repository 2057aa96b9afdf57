import { describe, expect, it } from "vitest";
import { lostTaskEnd } from "./liveness.js";

describe("lostTaskEnd: a lost agent's task is billed up to its last sign of life", () => {
  it.each([
    ["last heartbeat after the start", { startedAtMs: 1_000, placedAtMs: 900 }, 1_800, 31_000, 1_800],
    ["never beyond the detection moment", { startedAtMs: 1_000, placedAtMs: 900 }, 40_000, 31_000, 31_000],
    ["never before the start", { startedAtMs: 5_000, placedAtMs: 900 }, 2_000, 31_000, 5_000],
    ["placed but not started: from the placement", { startedAtMs: 0, placedAtMs: 900 }, 500, 31_000, 900],
  ])("%s", (_name, task, lastSeenMs, nowMs, expected) => {
    expect(lostTaskEnd(task, lastSeenMs, nowMs)).toBe(expected);
  });
});
