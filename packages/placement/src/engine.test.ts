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

describe("preemption", () => {
  const full = (id: string) => agent(id, { gpus: "2xH100-80GB" });

  it("evicts the allocation that loses the least work (checkpoint age × GPUs × price)", () => {
    const state = stateOf(
      [full("a"), full("b")],
      [
        // Checkpointed a minute ago: cheap to preempt.
        allocation("fresh-0", "a", [0, 1], { interruptible: true, lastCheckpointMs: NOW - 60_000 }),
        // Never checkpointed, running for an hour: expensive.
        allocation("old-0", "b", [0, 1], { interruptible: true, lastCheckpointMs: 0 }),
      ],
    );
    const plan = engine.place(state, request("j", { gpusPerReplica: 2 }), opts);
    expect(plan.outcome).toBe("preempting");
    expect(plan.preemptions.map((p) => p.taskId)).toEqual(["fresh-0"]);
    expect(plan.placements[0]).toMatchObject({ agentId: "a", gpuIndices: [0, 1] });
    expect(plan.explanation.preemptedTaskIds).toEqual(["fresh-0"]);
  });

  it("prefers one cheap victim over two, and only evicts as many as it needs", () => {
    const state = stateOf(
      [agent("a", { gpus: "4xH100-80GB" })],
      [
        allocation("x-0", "a", [0], { priority: 1, lastCheckpointMs: NOW - 600_000 }),
        allocation("y-0", "a", [1], { priority: 1, lastCheckpointMs: NOW - 60_000 }),
        allocation("z-0", "a", [2, 3], { priority: 1, lastCheckpointMs: NOW - 1_800_000 }),
      ],
    );
    const plan = engine.place(state, request("j", { gpusPerReplica: 1, priority: 5 }), opts);
    expect(plan.outcome).toBe("preempting");
    expect(plan.preemptions.map((p) => p.taskId)).toEqual(["y-0"]);
    expect(plan.placements[0]!.gpuIndices).toEqual([1]);
  });

  it("never evicts equal-priority on-demand work, nor anything for an interruptible job of equal priority", () => {
    const state = stateOf([full("a")], [allocation("x-0", "a", [0, 1], { interruptible: true })]);
    expect(engine.place(state, request("j", { gpusPerReplica: 2, interruptible: true }), opts).outcome).toBe("pending");
    const onDemand = stateOf([full("a")], [allocation("x-0", "a", [0, 1])]);
    expect(engine.place(onDemand, request("j", { gpusPerReplica: 2 }), opts).outcome).toBe("pending");
  });

  it("takes a whole gang down with any of its tasks and lists every task", () => {
    const state = stateOf(
      [full("a"), full("b")],
      [
        allocation("g-0", "a", [0, 1], { jobId: "g", priority: 0, gang: true, lastCheckpointMs: NOW - 60_000 }),
        allocation("g-1", "b", [0, 1], { jobId: "g", priority: 0, gang: true, lastCheckpointMs: NOW - 60_000 }),
      ],
    );
    const plan = engine.place(state, request("j", { gpusPerReplica: 2, priority: 3 }), opts);
    expect(plan.outcome).toBe("preempting");
    expect(plan.preemptions.map((p) => p.taskId).sort()).toEqual(["g-0", "g-1"]);
  });

  it("preempts for a gang in the domain that loses least", () => {
    const agents = [
      agent("a1", { gpus: "2xH100-80GB", fabricDomain: "f1" }),
      agent("a2", { gpus: "2xH100-80GB", fabricDomain: "f1" }),
      agent("b1", { gpus: "2xH100-80GB", fabricDomain: "f2" }),
      agent("b2", { gpus: "2xH100-80GB", fabricDomain: "f2" }),
    ];
    const state = stateOf(agents, [
      allocation("p-0", "a1", [0, 1], { interruptible: true, lastCheckpointMs: 0 }),
      allocation("q-0", "b1", [0, 1], { interruptible: true, lastCheckpointMs: NOW - 1000 }),
      allocation("r-0", "a2", [0], { interruptible: true, lastCheckpointMs: NOW - 1000 }),
    ]);
    const plan = engine.place(state, request("g", { kind: "training", replicas: 2, gpusPerReplica: 2 }), opts);
    expect(plan.outcome).toBe("preempting");
    expect(plan.preemptions.map((p) => p.taskId)).toEqual(["q-0"]);
    expect(plan.placements.map((p) => p.agentId).sort()).toEqual(["b1", "b2"]);
  });

  it("prefers a checkpointed victim over an equal-priced one that never checkpointed", () => {
    const state = stateOf(
      [full("a"), full("b")],
      [
        allocation("none-0", "a", [0, 1], { interruptible: true, startedAtMs: NOW - 600_000 }),
        allocation("ckpt-0", "b", [0, 1], {
          interruptible: true,
          startedAtMs: NOW - 600_000,
          lastCheckpointMs: NOW - 5_000,
        }),
      ],
    );
    const plan = engine.place(state, request("j", { gpusPerReplica: 2 }), opts);
    expect(plan.preemptions.map((p) => p.taskId)).toEqual(["ckpt-0"]);
  });

  it("never picks a stopping allocation as a victim; its GPUs count as soon free", () => {
    const state = stateOf(
      [agent("a", { gpus: "4xH100-80GB" })],
      [
        // Stopping, and the cheapest to lose: picking it again would be a no-op eviction.
        allocation("s-0", "a", [0, 1], { interruptible: true, stopping: true, lastCheckpointMs: NOW - 1_000 }),
        allocation("v-0", "a", [2, 3], { interruptible: true, lastCheckpointMs: 0 }),
      ],
    );
    const four = engine.place(state, request("j", { gpusPerReplica: 4 }), opts);
    expect(four.outcome).toBe("preempting");
    expect(four.preemptions.map((p) => p.taskId)).toEqual(["v-0"]);
    expect(four.placements[0]!.gpuIndices).toEqual([0, 1, 2, 3]);
    const two = engine.place(state, request("k", { gpusPerReplica: 2 }), opts);
    expect(two.outcome).toBe("pending");
    expect(two.preemptions).toEqual([]);
    expect(two.placements).toEqual([]);
    expect(two.explanation.awaitingTaskIds).toEqual(["s-0"]);
    expect(two.explanation.summary[0]).toContain("stopping task(s)");
  });

  it("a re-plan while the victims stop waits for them instead of preempting again, even when the ranking moved", () => {
    // x: cheap per hour, last checkpoint 100 s ago; y: ten times dearer, 5 s ago. Now y loses less; 20 s later x would.
    const x = allocation("x-0", "a", [0, 1], {
      interruptible: true,
      pricePerGpuHour: 1_000_000,
      lastCheckpointMs: NOW - 100_000,
    });
    const y = allocation("y-0", "b", [0, 1], {
      interruptible: true,
      pricePerGpuHour: 10_000_000,
      lastCheckpointMs: NOW - 5_000,
    });
    const state = stateOf([full("a"), full("b")], [x, y]);
    const first = engine.place(state, request("j", { gpusPerReplica: 2 }), opts);
    expect(first.outcome).toBe("preempting");
    expect(first.preemptions.map((p) => p.taskId)).toEqual(["y-0"]);
    // Without the victim marked, the later re-plan would pick x-0 too.
    expect(
      engine.place(state, request("j", { gpusPerReplica: 2 }), { ...opts, nowMs: NOW + 20_000 }).preemptions,
    ).toEqual([expect.objectContaining({ taskId: "x-0" })]);

    state.addAllocation({ ...y, stopping: true });
    const again = engine.place(state, request("j", { gpusPerReplica: 2 }), { ...opts, nowMs: NOW + 20_000 });
    expect(again.outcome).toBe("pending");
    expect(again.preemptions).toEqual([]);
    expect(again.explanation.awaitingTaskIds).toEqual(["y-0"]);

    state.removeAllocation("y-0");
    const placed = engine.place(state, request("j", { gpusPerReplica: 2 }), { ...opts, nowMs: NOW + 20_000 });
    expect(placed.outcome).toBe("placed");
    expect(placed.placements[0]).toMatchObject({ agentId: "b", gpuIndices: [0, 1] });
  });

  it("does not count a gang that is partly stopping as a victim", () => {
    const state = stateOf(
      [full("a"), full("b")],
      [
        allocation("g-0", "a", [0, 1], { jobId: "g", gang: true, stopping: true }),
        allocation("g-1", "b", [0, 1], { jobId: "g", gang: true }),
      ],
    );
    const plan = engine.place(state, request("j", { gpusPerReplica: 2, priority: 3, replicas: 2 }), opts);
    // One replica fits on g-0's soon-free GPUs; the other would need g-1, which goes down with its gang anyway.
    expect(plan.preemptions).toEqual([]);
    expect(plan.outcome).toBe("pending");
  });

  it("waits for stopping gang members instead of evicting for a gang", () => {
    const agents = [
      agent("a1", { gpus: "2xH100-80GB", fabricDomain: "f1" }),
      agent("a2", { gpus: "2xH100-80GB", fabricDomain: "f1" }),
    ];
    const state = stateOf(agents, [
      allocation("p-0", "a1", [0, 1], { interruptible: true, stopping: true }),
      allocation("q-0", "a2", [0, 1], { interruptible: true, stopping: true }),
    ]);
    const plan = engine.place(state, request("g", { kind: "training", replicas: 2, gpusPerReplica: 2 }), opts);
    expect(plan.outcome).toBe("pending");
    expect(plan.explanation.awaitingTaskIds).toEqual(["p-0", "q-0"]);
  });

  it("a profile without preemption leaves the job pending", () => {
    const e = new PlacementEngine({ profiles: [{ name: "gentle", weights: { cost: 1 }, preemption: false }] });
    const state = stateOf([full("a")], [allocation("x-0", "a", [0, 1], { interruptible: true })]);
    expect(e.place(state, request("j", { gpusPerReplica: 2 }), { ...opts, profile: "gentle" }).outcome).toBe("pending");
  });
});

describe("inference", () => {
  it("spreads replicas over demand regions in proportion, one per region at least, over distinct providers", () => {
    const agents = ["aws", "gcp", "lambda"].flatMap((provider) =>
      ["us-east", "eu-west", "ap-northeast"].map((region) =>
        agent(`${provider}-${region}`, { provider, region, gpus: "8xL4-24GB" }),
      ),
    );
    const state = stateOf(agents);
    const spec = {
      kind: "inference" as const,
      replicas: 6,
      demandByRegion: { "us-east": 4, "eu-west": 2, "ap-northeast": 0.5 },
    };
    const plan = engine.place(state, request("svc", spec), opts);
    expect(plan.outcome).toBe("placed");
    const byRegion: Record<string, number> = {};
    for (const p of plan.placements) byRegion[p.region] = (byRegion[p.region] ?? 0) + 1;
    expect(byRegion).toEqual({ "us-east": 3, "eu-west": 2, "ap-northeast": 1 });
    const usEast = plan.placements.filter((p) => p.region === "us-east").map((p) => p.agentId);
    expect(new Set(usEast).size).toBe(3);
  });

  it("uses a new provider for each replica where one exists, even when another is cheaper", () => {
    const state = stateOf([
      agent("cheap", { provider: "lambda", gpus: "8xL4-24GB", prices: { "L4-24GB": ["0.40"] } }),
      agent("mid", { provider: "gcp", gpus: "8xL4-24GB", prices: { "L4-24GB": ["0.70"] } }),
      agent("dear", { provider: "aws", gpus: "8xL4-24GB", prices: { "L4-24GB": ["0.80"] } }),
    ]);
    const spec = { kind: "inference" as const, replicas: 4, demandByRegion: { "us-east": 1 } };
    const plan = engine.place(state, request("svc", spec), opts);
    expect(plan.placements.map((p) => p.agentId)).toEqual(["cheap", "mid", "dear", "cheap"]);
  });

  it("sends a replica to the nearest feasible region when its demand region has no capacity", () => {
    const state = stateOf([
      agent("eu", { region: "eu-central", gpus: "1xL4-24GB" }),
      agent("ap", { region: "ap-northeast", gpus: "1xL4-24GB" }),
    ]);
    const spec = { kind: "inference" as const, replicas: 1, demandByRegion: { "eu-west": 1 } };
    const plan = engine.place(state, request("svc", spec), { ...opts, profile: "low-latency" });
    expect(plan.placements[0]!.agentId).toBe("eu");
  });
});

describe("explanations and relaxations", () => {
  it("names the chosen placement, the runner-up and rejections by reason", () => {
    const state = stateOf([
      agent("a", { prices: { "H100-80GB": ["2.00"] } }),
      agent("b", { prices: { "H100-80GB": ["2.50"] } }),
      agent("c", { region: "eu-west" }),
    ]);
    const plan = engine.place(state, request("j", { regions: ["us-east"] }), opts);
    const e = plan.explanation;
    expect(e.chosen[0]!.agentId).toBe("a");
    expect(e.runnerUp[0]!.agentId).toBe("b");
    expect(e.rejections).toEqual({ "region-not-allowed": 1 });
    expect(e.chosen[0]!.scores).toHaveProperty("cost", 100);
    expect(e.summary.join("\n")).toContain("replica 0 → a (H100-80GB ×1, us-east) at $2.00/GPU-h");
    expect(e.estimatedCost).toBe(2_000_000);
  });

  it("names a gang's runner-up in another fabric domain", () => {
    const state = stateOf([
      agent("a1", { fabricDomain: "fd-a", prices: { "H100-80GB": ["2.00"] } }),
      agent("a2", { fabricDomain: "fd-a", prices: { "H100-80GB": ["2.00"] } }),
      agent("b1", { fabricDomain: "fd-b", prices: { "H100-80GB": ["2.50"] } }),
      agent("b2", { fabricDomain: "fd-b", prices: { "H100-80GB": ["2.50"] } }),
    ]);
    const plan = engine.place(state, request("g", { kind: "training", replicas: 2, gpusPerReplica: 8 }), opts);
    expect(plan.explanation.chosen.map((p) => p.agentId).sort()).toEqual(["a1", "a2"]);
    expect(plan.explanation.runnerUp.map((p) => p.agentId).sort()).toEqual(["b1", "b2"]);
  });

  it("suggests the cheapest single relaxation for an unplaceable job", () => {
    const state = stateOf([
      agent("x", { region: "eu-west", gpus: "8xA100-80GB", prices: { "A100-80GB": ["1.89"] } }),
      agent("y", { region: "eu-west", gpus: "8xH200-141GB", prices: { "H200-141GB": ["3.50"] } }),
      agent("z", { region: "eu-west", gpus: "8xH100-80GB", prices: { "H100-80GB": ["2.40"] } }),
    ]);
    const plan = engine.place(state, request("j", { gpuModels: ["H100-80GB"], maxPricePerGpuHour: 2_000_000 }), opts);
    expect(plan.outcome).toBe("unplaceable");
    expect(plan.explanation.relaxation).toBe("allow A100-80GB: $1.89/GPU-h in eu-west");
    expect(plan.explanation.rejections).toEqual({ "gpu-model-not-accepted": 2, "over-max-price": 1 });
  });

  it("never suggests dropping residency", () => {
    const state = stateOf([agent("x", { region: "us-east" })]);
    const plan = engine.place(state, request("j", { residency: "eu" }), opts);
    expect(plan.outcome).toBe("unplaceable");
    expect(plan.explanation.relaxation).toBe("");
  });

  it("is deterministic for the same seed and breaks ties by the seed", () => {
    const agents = Array.from({ length: 20 }, (_, i) => agent(`a${String(i).padStart(2, "0")}`));
    const chosen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const one = engine.place(stateOf(agents), request("j"), { nowMs: NOW, seed });
      const two = engine.place(stateOf([...agents].reverse()), request("j"), { nowMs: NOW, seed });
      expect(two).toEqual(one);
      chosen.add(one.placements[0]!.agentId);
    }
    expect(chosen.size).toBeGreaterThan(3);
  });
});

describe("all or nothing", () => {
  it("a batch job whose replicas do not all fit gets no placements (the scheduler re-asks for what is left)", () => {
    const state = stateOf([agent("a", { gpus: "4xH100-80GB" })], [allocation("x-0", "a", [0, 1])]);
    const plan = engine.place(state, request("b", { kind: "batch", replicas: 3, gpusPerReplica: 1 }), opts);
    expect(plan.outcome).toBe("pending");
    expect(plan.placements).toEqual([]);
    const rest = engine.place(state, { ...request("b", { replicas: 3 }), replicas: [1, 2] }, opts);
    expect(rest.placements.map((p) => p.replica)).toEqual([1, 2]);
  });

  it("accepts a full profile in the options instead of a name", () => {
    const state = stateOf([
      agent("cheap", { reliability: 0.5, prices: { "H100-80GB": ["1.00"] } }),
      agent("solid", { reliability: 1, prices: { "H100-80GB": ["3.00"] } }),
    ]);
    const plan = engine.place(state, request("j"), {
      ...opts,
      profile: { name: "adhoc", weights: { reliability: 1 } },
    });
    expect(plan.placements[0]!.agentId).toBe("solid");
    expect(plan.explanation.profile).toBe("adhoc");
  });
});

describe("CPU-only tasks", () => {
  it("go to any agent passing the location filters, with no GPUs and no GPU price", () => {
    const state = stateOf([agent("a", { region: "us-east" }), agent("b", { region: "eu-west" })]);
    const plan = engine.place(state, request("c", { gpusPerReplica: 0, regions: ["eu-west"] }), opts);
    expect(plan.placements).toEqual([expect.objectContaining({ agentId: "b", gpuIndices: [], pricePerGpuHour: 0 })]);
  });
});
