import { type AgentView, type AllocationView, ClusterState } from "@capa/placement";
import { describe, expect, it } from "vitest";
import { offerSources } from "./sources.js";

function agent(id: string, o: { draining?: boolean; lastSeenMs?: number } = {}): AgentView {
  return {
    id,
    region: "us-east",
    zone: "us-east-a",
    provider: "acme",
    fabricDomain: "",
    residency: "us",
    labels: {},
    reliability: 0.99,
    gpus: [0, 1, 2, 3].map((index) => ({ index, model: "H100-80GB", vramMib: 81_920, healthy: true })),
    prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_000_000, interruptiblePerHour: 0 }],
    lastSeenMs: o.lastSeenMs ?? 1_000,
    draining: o.draining ?? false,
    simulated: true,
  };
}

function allocation(taskId: string, agentId: string, gpuIndices: number[]): AllocationView {
  return {
    taskId,
    jobId: taskId.replace(/-\d+$/, ""),
    agentId,
    gpuIndices,
    priority: 0,
    interruptible: false,
    pricePerGpuHour: 2_000_000,
    startedAtMs: 1_000,
    lastCheckpointMs: 0,
  };
}

const freeOf = (sources: ReturnType<typeof offerSources>, id: string) =>
  sources
    .find((s) => s.agentId === id)
    ?.gpus.filter((g) => g.free)
    .map((g) => g.index);

describe("offerSources", () => {
  it("keeps an unchanged agent's source and rebuilds only the agent an allocation, advert or drain changed", () => {
    const cluster = new ClusterState();
    cluster.upsertAgent(agent("a"));
    cluster.upsertAgent(agent("b"));
    const first = offerSources(cluster);
    const again = offerSources(cluster);
    expect(again[0]).toBe(first[0]);
    expect(again[1]).toBe(first[1]);

    cluster.addAllocation(allocation("t-0", "a", [1, 2]));
    const placed = offerSources(cluster);
    expect(placed[1]).toBe(first[1]);
    expect(placed[0]).not.toBe(first[0]);
    expect(freeOf(placed, "a")).toEqual([0, 3]);

    cluster.removeAllocation("t-0");
    expect(freeOf(offerSources(cluster), "a")).toEqual([0, 1, 2, 3]);

    cluster.upsertAgent(agent("b", { draining: true, lastSeenMs: 2_000 }));
    const drained = offerSources(cluster).find((s) => s.agentId === "b")!;
    expect(drained.draining).toBe(true);
    expect(drained.lastSeenMs).toBe(2_000);
  });

  it("forgets an agent that left, and a re-added agent is built afresh (its allocations gone with it)", () => {
    const cluster = new ClusterState();
    cluster.upsertAgent(agent("a"));
    cluster.addAllocation(allocation("t-0", "a", [0]));
    expect(freeOf(offerSources(cluster), "a")).toEqual([1, 2, 3]);
    cluster.removeAgent("a");
    expect(offerSources(cluster)).toEqual([]);
    cluster.upsertAgent(agent("a"));
    expect(freeOf(offerSources(cluster), "a")).toEqual([0, 1, 2, 3]);
  });

  it("matches a source built from scratch after any sequence of changes", () => {
    const cluster = new ClusterState();
    const fresh = new ClusterState();
    for (const id of ["a", "b", "c"]) {
      cluster.upsertAgent(agent(id));
      fresh.upsertAgent(agent(id));
    }
    offerSources(cluster);
    const steps: ((s: ClusterState) => void)[] = [
      (s) => s.addAllocation(allocation("x-0", "b", [3])),
      (s) => s.addAllocation(allocation("y-0", "c", [0, 1])),
      (s) => s.upsertAgent(agent("a", { lastSeenMs: 5_000 })),
      (s) => s.removeAllocation("x-0"),
      (s) => s.addAllocation(allocation("y-0", "a", [2])),
    ];
    for (const step of steps) {
      step(cluster);
      step(fresh);
      expect(offerSources(cluster)).toEqual(offerSources(fresh));
    }
  });
});
