import { describe, expect, it } from "vitest";
import { OverCommitError } from "../errors.js";
import { agent, allocation, NOW, stateOf } from "../test-fixtures.js";
import { ClusterState } from "./cluster-state.js";

describe("ClusterState", () => {
  it("tracks free GPUs through allocations and releases", () => {
    const state = stateOf([agent("a", { gpus: "4xH100-80GB", unhealthy: [3] })]);
    expect(state.freeGpuIndices("a")).toEqual([0, 1, 2]);
    state.addAllocation(allocation("t-0", "a", [1]));
    expect(state.freeGpuIndices("a")).toEqual([0, 2]);
    expect(state.allocation("t-0")?.agentId).toBe("a");
    state.removeAllocation("t-0");
    state.removeAllocation("t-0");
    expect(state.freeGpuIndices("a")).toEqual([0, 1, 2]);
  });

  it("throws OverCommitError for a taken or unknown GPU and changes nothing", () => {
    const state = stateOf([agent("a", { gpus: "2xH100-80GB" })], [allocation("t-0", "a", [0])]);
    expect(() => state.addAllocation(allocation("u-0", "a", [1, 0]))).toThrow(OverCommitError);
    expect(() => state.addAllocation(allocation("u-0", "a", [7]))).toThrow(OverCommitError);
    expect(() => state.addAllocation(allocation("u-0", "zz", [0]))).toThrow(OverCommitError);
    expect(() => state.addAllocation(allocation("u-0", "a", [1, 1]))).toThrow(OverCommitError);
    expect(state.freeGpuIndices("a")).toEqual([1]);
    expect(state.allocation("u-0")).toBeUndefined();
  });

  it("re-adding a task id replaces its allocation", () => {
    const state = stateOf([agent("a", { gpus: "2xH100-80GB" })], [allocation("t-0", "a", [0])]);
    state.addAllocation(allocation("t-0", "a", [1]));
    expect(state.freeGpuIndices("a")).toEqual([0]);
  });

  it("keeps allocations across an agent update and drops them with the agent", () => {
    const state = stateOf([agent("a", { gpus: "2xH100-80GB" })], [allocation("t-0", "a", [0])]);
    state.upsertAgent(agent("a", { gpus: "2xH100-80GB", draining: true }));
    expect(state.freeGpuIndices("a")).toEqual([1]);
    expect(state.agent("a")?.draining).toBe(true);
    state.removeAgent("a");
    expect(state.agent("a")).toBeUndefined();
    expect([...state.allocations()]).toEqual([]);
  });

  it("keeps the offer index in step: buckets by model and region, free counts per offer", () => {
    const state = new ClusterState();
    state.upsertAgent(agent("a", { gpus: "8xH100-80GB", region: "eu-west" }));
    state.upsertAgent(agent("b", { gpus: "4xA100-80GB", region: "eu-west" }));
    state.addAllocation(allocation("t-0", "a", [0, 1, 2]));
    const bucket = state.indexes["on-demand"].buckets.get("H100-80GB|eu-west|eu")!;
    expect(bucket.freeSum).toBe(5);
    expect(bucket.levels[0]!.byFree[5]!.map((o) => o.agentId)).toEqual(["a"]);
    state.removeAgent("a");
    expect(state.indexes["on-demand"].buckets.has("H100-80GB|eu-west|eu")).toBe(false);
    expect(state.indexes["on-demand"].byModel.get("A100-80GB")).toHaveLength(1);
  });

  it("offers a model only where the agent prices it, and interruptible capacity only when priced > 0", () => {
    const state = stateOf([
      agent("a", { gpus: "2xH100-80GB", prices: {} }),
      agent("b", { gpus: "2xH100-80GB", prices: { "H100-80GB": ["2.00", "0.80"] } }),
    ]);
    expect(state.offerOf("a", "H100-80GB")).toBeUndefined();
    expect(state.offerOf("b", "H100-80GB")?.priceIn("interruptible")).toEqual({ price: 800_000, interruptible: true });
    expect(state.offerOf("b", "H100-80GB")?.priceIn("on-demand")).toEqual({ price: 2_000_000, interruptible: false });
  });

  it("keeps stopping allocations holding their GPUs, listed apart and not counted as possible victims", () => {
    const state = stateOf([agent("a", { gpus: "2xH100-80GB" })]);
    state.addAllocation(allocation("x-0", "a", [0], { priority: 0 }));
    expect(state.hasAllocationsYieldingTo(5, false)).toBe(true);
    state.addAllocation(allocation("x-0", "a", [0], { priority: 0, stopping: true }));
    expect(state.freeGpuIndices("a")).toEqual([1]);
    expect(state.stoppingAllocations().map((a) => a.taskId)).toEqual(["x-0"]);
    expect(state.hasAllocationsYieldingTo(5, false)).toBe(false);
    state.removeAllocation("x-0");
    expect(state.stoppingAllocations()).toEqual([]);
    expect(state.freeGpuIndices("a")).toEqual([0, 1]);
  });

  it("touchAgent moves only the sighting: offers stay indexed, every reader sees the new lastSeenMs", () => {
    const state = stateOf([agent("b"), agent("a", { gpus: "8xH100-80GB" }), agent("c")]);
    state.addAllocation(allocation("t-0", "a", [0, 1]));
    expect([...state.agents()].map((v) => v.id)).toEqual(["a", "b", "c"]); // builds the sorted list
    const bucket = state.indexes["on-demand"].buckets.get("H100-80GB|us-east|us")!;
    const level = bucket.levels[0]!;
    const before = state.agentVersion("a");
    expect(state.touchAgent("a", NOW + 5_000)).toBe(true);
    expect(state.agentVersion("a")).not.toBe(before);
    expect(state.agent("a")?.lastSeenMs).toBe(NOW + 5_000);
    expect([...state.agents()].find((v) => v.id === "a")?.lastSeenMs).toBe(NOW + 5_000);
    expect(state.offerOf("a", "H100-80GB")?.agent.lastSeenMs).toBe(NOW + 5_000);
    expect(bucket.levels[0]).toBe(level);
    expect(level.byFree[6]!.map((o) => o.agentId)).toEqual(["a"]);
    expect(bucket.freeSum).toBe(6 + 8 + 8);
    expect(state.freeGpuIndices("a")).toEqual([2, 3, 4, 5, 6, 7]);
    expect(state.touchAgent("zz", NOW)).toBe(false);
    expect(state.agent("zz")).toBeUndefined();
  });
});
