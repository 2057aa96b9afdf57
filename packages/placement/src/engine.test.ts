import { describe, expect, it } from "vitest";
import { PlacementEngine } from "./engine.js";
import { agent, allocation, NOW, request, stateOf } from "./test-fixtures.js";

const engine = new PlacementEngine();
const opts = { nowMs: NOW, seed: 1 };

describe("PlacementEngine.place", () => {
  it("places a single-GPU job on the cheapest agent", () => {
    const state = stateOf([
      agent("a", { prices: { "H100-80GB": ["3.00"] } }),
      agent("b", { prices: { "H100-80GB": ["2.10"] } }),
      agent("c", { prices: { "H100-80GB": ["2.50"] } }),
    ]);
    const plan = engine.place(state, request("j1"), opts);
    expect(plan.outcome).toBe("placed");
    expect(plan.placements).toHaveLength(1);
    expect(plan.placements[0]).toMatchObject({ agentId: "b", gpuModel: "H100-80GB", pricePerGpuHour: 2_100_000 });
    expect(plan.placements[0]!.gpuIndices).toEqual([0]);
  });

  it("does not mutate the state", () => {
    const state = stateOf([agent("a")]);
    engine.place(state, request("j1", { replicas: 3, gpusPerReplica: 2 }), opts);
    expect(state.freeGpuIndices("a")).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...state.allocations()]).toHaveLength(0);
  });

  it("places replicas of one plan on distinct GPUs", () => {
    const state = stateOf([agent("a", { gpus: "4xH100-80GB" })]);
    const plan = engine.place(state, request("j", { replicas: 4, gpusPerReplica: 1 }), opts);
    expect(plan.outcome).toBe("placed");
    expect(plan.placements.flatMap((p) => p.gpuIndices).sort()).toEqual([0, 1, 2, 3]);
  });

  it("is pending when the fleet could host the job but is full, unplaceable when it never could", () => {
    const state = stateOf([agent("a", { gpus: "2xH100-80GB" })], [allocation("x-0", "a", [0, 1])]);
    expect(engine.place(state, request("j"), opts).outcome).toBe("pending");
    expect(engine.place(state, request("k", { gpusPerReplica: 4 }), opts).outcome).toBe("unplaceable");
  });

  it("places a gang all or nothing inside one fabric domain", () => {
    const agents = [
      agent("a1", { fabricDomain: "fd-a" }),
      agent("a2", { fabricDomain: "fd-a" }),
      agent("b1", { fabricDomain: "fd-b", prices: { "H100-80GB": ["1.00"] } }),
    ];
    const state = stateOf(agents);
    const plan = engine.place(state, request("g", { kind: "training", replicas: 2, gpusPerReplica: 8 }), opts);
    expect(plan.outcome).toBe("placed");
    expect(plan.placements.map((p) => p.agentId).sort()).toEqual(["a1", "a2"]);
    const tooBig = engine.place(state, request("g2", { kind: "training", replicas: 3, gpusPerReplica: 8 }), opts);
    expect(tooBig.outcome).toBe("unplaceable");
    expect(tooBig.placements).toEqual([]);
  });
});
