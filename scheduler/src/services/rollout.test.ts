import { describe, expect, it } from "vitest";
import { canaryCount, judgeStep, ladder, type RolloutPolicy, type RolloutState } from "./rollout.js";

const policy: RolloutPolicy = {
  canaryPercent: 10,
  steps: [50, 100],
  pauseMs: 1_000,
  maxErrorRate: 0.05,
  minRequests: 20,
  readyTimeoutMs: 10_000,
};
const state = (over: Partial<RolloutState> = {}): RolloutState => ({
  revision: 2,
  fromRevision: 1,
  regionIndex: 0,
  stepIndex: 0,
  stepStartedAtMs: 0,
  readySinceMs: 1_000,
  phase: "progressing",
  reason: "",
  baseline: {},
  startedAtMs: 0,
  updatedAtMs: 0,
  ...over,
});
const obs = (ready: number, requests: number, errors: number) => ({ wanted: 1, ready, requests, errors });

describe("ladder and canaryCount", () => {
  it("puts the canary first and drops steps at or below it", () => {
    expect(ladder(policy)).toEqual([10, 50, 100]);
    expect(ladder({ ...policy, canaryPercent: 50 })).toEqual([50, 100]);
    expect(ladder({ ...policy, steps: [] })).toEqual([10, 100]);
  });
  it.each([
    [1, 10, 1],
    [4, 10, 1],
    [10, 10, 1],
    [11, 10, 2],
    [4, 50, 2],
    [4, 100, 4],
    [0, 100, 1],
  ])("%d old replicas at %d%% → %d new", (old, pct, want) => expect(canaryCount(old, pct)).toBe(want));
});

describe("judgeStep", () => {
  it.each([
    ["holds while the new replica is not ready", state({ readySinceMs: 0 }), obs(0, 0, 0), 5_000, undefined, "hold"],
    ["rolls back when not ready in time", state({ readySinceMs: 0 }), obs(0, 0, 0), 10_001, undefined, "rollback"],
    ["rolls back over the error rate", state(), obs(1, 40, 3), 1_500, undefined, "rollback"],
    ["does not judge errors below min requests", state(), obs(1, 10, 10), 1_500, undefined, "hold"],
    ["holds for the pause after readiness", state({ readySinceMs: 1_000 }), obs(1, 30, 0), 1_900, undefined, "hold"],
    ["advances after the pause with evidence", state(), obs(1, 30, 1), 2_000, undefined, "advance"],
    ["without traffic waits three pauses", state(), obs(1, 0, 0), 2_500, undefined, "hold"],
    ["without traffic advances after three pauses", state(), obs(1, 0, 0), 4_000, undefined, "advance"],
    ["promote skips the pause once ready", state({ readySinceMs: 1_900 }), obs(1, 0, 0), 2_000, "promote", "advance"],
    ["promote still waits for readiness", state({ readySinceMs: 0 }), obs(0, 0, 0), 2_000, "promote", "hold"],
    ["abort rolls back at once", state(), obs(1, 100, 0), 2_000, "abort", "rollback"],
  ] as const)("%s", (_name, s, o, now, forced, want) => {
    expect(judgeStep(policy, s, "eu-west", o, now, forced).kind).toBe(want);
  });

  it("says why in the reason", () => {
    const v = judgeStep(policy, state(), "eu-west", obs(1, 40, 8), 1_500, undefined);
    expect(v).toEqual({ kind: "rollback", reason: "error rate 20.0% (8/40) over 5.0% in eu-west at 10%" });
  });
});
