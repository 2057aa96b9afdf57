import type { JobSpec } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { buildContext, replicaCost } from "../context.js";
import { PlacementEngine } from "../engine.js";
import type { Candidate, RequestContext } from "../pipeline.js";
import { BUILTIN_PROFILES, resolveProfile } from "../profile.js";
import { DEFAULT_TABLES } from "../tables.js";
import { type AgentOptions, agent, allocation, NOW, request, stateOf } from "../test-fixtures.js";
import { binpackScorer } from "./binpack.js";
import { costScorer } from "./cost.js";
import { headroomScorer } from "./headroom.js";
import { latencyScorer } from "./latency.js";
import { localityScorer } from "./locality.js";
import { SCORERS } from "./registry.js";
import { reliabilityScorer } from "./reliability.js";
import { scarcityScorer, shadowCost } from "./scarcity.js";
import { spreadScorer } from "./spread.js";

function contextFor(spec: Partial<JobSpec>): RequestContext {
  const req = request("job", spec);
  return buildContext(req, req.spec, { nowMs: NOW, seed: 1 }, resolveProfile(BUILTIN_PROFILES[1]!), DEFAULT_TABLES);
}

function candidate(ctx: RequestContext, id: string, o: AgentOptions, freeBefore?: number): Candidate {
  const a = agent(id, o);
  const offer = stateOf([a]).offerOf(id, a.gpus[0]!.model)!;
  const priced = offer.priceIn(ctx.mode)!;
  return {
    offer,
    agent: a,
    model: offer.model,
    region: a.region,
    pricePerGpuHour: priced.price,
    interruptible: priced.interruptible,
    freeBefore: freeBefore ?? offer.free,
    cost: replicaCost(ctx, priced.price, a.region),
  };
}

describe("cost scorer", () => {
  // One GPU for the default hour: $1.00/GPU-h costs $1.00; the profile's cost scale is $1.
  const ctx = contextFor({ dataRegion: "us-east" });
  ctx.cheapestCost = replicaCost(ctx, 1_000_000, "us-east");
  it.each([
    ["the cheapest offer", "1.00", "us-east", 100],
    ["one scale ($1) dearer", "2.00", "us-east", 50],
    ["two scales dearer", "3.00", "us-east", 100 / 3],
    ["cheaper than the reference (never above 100)", "0.50", "us-east", 100],
  ])("%s", (_n, price, region, expected) => {
    const c = candidate(ctx, "a", { region, prices: { "H100-80GB": [price] } });
    expect(costScorer.score(ctx, c, [])).toBeCloseTo(expected, 6);
  });
  it("charges egress from the data region: the same price scores lower across an ocean", () => {
    const home = candidate(ctx, "a", { region: "us-east", prices: { "H100-80GB": ["2.00"] } });
    const away = candidate(ctx, "b", { region: "eu-west", prices: { "H100-80GB": ["2.00"] } });
    expect(costScorer.score(ctx, away, [])).toBeLessThan(costScorer.score(ctx, home, []));
  });
});

describe("latency scorer", () => {
  it.each([
    ["in the demand region", { "eu-west": 1 }, "eu-west", 99.6],
    ["next door", { "eu-west": 1 }, "eu-central", 94],
    ["across the Atlantic", { "eu-west": 1 }, "us-east", 70],
    ["no demand: neutral", {}, "ap-northeast", 100],
    ["weighted by demand", { "eu-west": 3, "us-east": 1 }, "eu-west", 100 * (1 - (3 * 1 + 75) / 4 / 250)],
  ])("%s", (_n, demandByRegion, region, expected) => {
    const ctx = contextFor({ demandByRegion });
    expect(latencyScorer.score(ctx, candidate(ctx, "a", { region }), [])).toBeCloseTo(expected, 6);
  });
});

describe("headroom scorer", () => {
  // One 8-GPU agent alone in its (model, region) bucket; `busy` of its GPUs taken.
  it.each([
    ["empty bucket", 0, 1, 100],
    ["a quarter left after the replica", 5, 1, 100],
    ["one eighth left after the replica", 6, 1, 50],
    ["the last GPU", 7, 1, 0],
    ["two GPUs leaving half", 2, 2, 100],
  ])("%s", (_n, busy, gpusPerReplica, expected) => {
    const ctx = contextFor({ gpusPerReplica });
    const a = agent("a", { gpus: "8xH100-80GB" });
    const state = stateOf([a]);
    if (busy > 0) {
      state.addAllocation({
        taskId: "x-0",
        jobId: "x",
        agentId: "a",
        gpuIndices: Array.from({ length: busy }, (_, i) => i),
        priority: 0,
        interruptible: false,
        pricePerGpuHour: 0,
        startedAtMs: NOW,
        lastCheckpointMs: 0,
      });
    }
    const offer = state.offerOf("a", "H100-80GB")!;
    const c: Candidate = {
      offer,
      agent: a,
      model: offer.model,
      region: a.region,
      pricePerGpuHour: 2_000_000,
      interruptible: false,
      freeBefore: offer.free,
      cost: 0,
    };
    expect(headroomScorer.score(ctx, c, [])).toBeCloseTo(expected, 6);
  });
});

describe("scarcity scorer", () => {
  // us-east holds 2 T4s on "t" and 8 H100s on "h": the T4 pool is 2 GPUs, the H100 pool 8, the region 10.
  // One GPU for the default hour; the cost reference is $1.00, the cost scale $1 (shadow $1 = half the score).
  // The shadow price is $2 per GPU-hour at an emptied pool, $2 ÷ (1 + GPUs left after).
  const fleet = () => [agent("t", { gpus: "2xT4-16GB", prices: { "T4-16GB": ["1.00"] } }), agent("h")];
  it.each([
    // name, agent, GPUs taken on it, GPUs per replica, price, expected score
    ["one of two T4s left after: shadow $1", "t", 0, 1, "1.00", 50],
    ["the last T4: the full $2", "t", 1, 1, "1.00", 100 / 3],
    ["a big pool: 7 H100s left after, shadow $2/8", "h", 0, 1, "1.00", 100 / 1.25],
    ["two GPUs, 6 left after: $2/7 per GPU", "h", 0, 2, "1.00", 100 / (1 + 4 / 7)],
    // $1 dearer than the reference: the cost score falls from 50 to 100/4, which is what the shadow costs it.
    ["a dearer candidate loses what the cost score would lose", "t", 1, 1, "2.00", 100 - (50 - 25)],
  ])("%s", (_n, id, busy, gpusPerReplica, price, expected) => {
    const ctx = contextFor({ gpusPerReplica });
    ctx.cheapestCost = replicaCost(ctx, 1_000_000, "us-east");
    const busyOn = Array.from({ length: busy }, (_, i) => i);
    const state = stateOf(fleet(), busy > 0 ? [allocation("x-0", id, busyOn)] : []);
    const offer = state.offerOf(id, id === "t" ? "T4-16GB" : "H100-80GB")!;
    const c: Candidate = {
      offer,
      agent: offer.agent,
      model: offer.model,
      region: "us-east",
      pricePerGpuHour: Math.round(Number(price) * 1_000_000),
      interruptible: false,
      freeBefore: offer.free,
      cost: replicaCost(ctx, Math.round(Number(price) * 1_000_000), "us-east"),
    };
    expect(scarcityScorer.score(ctx, c, [])).toBeCloseTo(expected, 6);
    expect(scarcityScorer.bound!(ctx, offer.slots["on-demand"]!.bucket, c.pricePerGpuHour)).toBeCloseTo(expected, 6);
  });

  it("the region pool counts too: the last GPU of a region is scarce whatever its model", () => {
    const ctx = contextFor({});
    const state = stateOf([agent("r", { region: "sa-east", gpus: "1xH100-80GB" }), agent("h")]);
    const bucket = state.offerOf("r", "H100-80GB")!.slots["on-demand"]!.bucket;
    expect(shadowCost(ctx, bucket)).toBe(2_000_000);
  });

  it("is free for CPU-only jobs", () => {
    const ctx = contextFor({ gpusPerReplica: 0 });
    const bucket = stateOf(fleet()).offerOf("t", "T4-16GB")!.slots["on-demand"]!.bucket;
    expect(shadowCost(ctx, bucket)).toBe(0);
  });

  // With the weight of cost (profile cheapest), the pair ranks by cost + shadow price.
  const engine = new PlacementEngine();
  it.each([
    // The last T4's shadow price is $2; the H100s' $0.25.
    ["a flexible job leaves the last T4 when an H100 is under its shadow price dearer", "0.90", "1.00", {}, "h"],
    ["it keeps the T4 when the H100 costs more than the shadow price more", "0.10", "3.00", {}, "t"],
    ["a job naming the T4 takes it whatever its shadow price", "0.90", "1.00", { gpuModels: ["T4-16GB"] }, "t"],
  ])("%s", (_n, t4Price, h100Price, spec, expected) => {
    const state = stateOf(
      [
        agent("t", { gpus: "2xT4-16GB", prices: { "T4-16GB": [t4Price] } }),
        agent("h", { prices: { "H100-80GB": [h100Price] } }),
      ],
      [allocation("x-0", "t", [0])],
    );
    const plan = engine.place(state, request("j", spec), { nowMs: NOW, seed: 1, profile: "cheapest" });
    expect(plan.placements[0]?.agentId).toBe(expected);
  });
});

describe("reliability scorer", () => {
  it.each([
    [1, 100],
    [0.9, 90],
    [0, 0],
    [1.5, 100],
  ])("reliability %s scores %s", (reliability, expected) => {
    const ctx = contextFor({});
    expect(reliabilityScorer.score(ctx, candidate(ctx, "a", { reliability }), [])).toBeCloseTo(expected, 6);
  });
});

describe("binpack scorer", () => {
  it.each([
    ["fills the agent", 1, 1, 100],
    ["leaves half free", 1, 5, 50],
    ["empty 8-GPU agent, 1 GPU", 1, 8, 12.5],
    ["two GPUs on an empty agent", 2, 8, 25],
  ])("%s", (_n, gpusPerReplica, freeBefore, expected) => {
    const ctx = contextFor({ gpusPerReplica });
    expect(binpackScorer.score(ctx, candidate(ctx, "a", { gpus: "8xH100-80GB" }, freeBefore), [])).toBeCloseTo(
      expected,
      6,
    );
  });
});

describe("spread scorer", () => {
  const ctx = contextFor({ kind: "inference", replicas: 3 });
  const peerA = candidate(ctx, "p1", { provider: "aws" });
  const peerB = candidate(ctx, "p2", { provider: "gcp" });
  it.each([
    ["no peers", "x", "aws", [], 100],
    ["new provider", "x", "lambda", [peerA, peerB], 100],
    ["same provider as one of two peers", "x", "aws", [peerA, peerB], 75],
    ["same agent and provider as the only peer", "p1", "aws", [peerA], 0],
  ])("%s", (_n, id, provider, peers, expected) => {
    expect(spreadScorer.score(ctx, candidate(ctx, id, { provider }), peers)).toBeCloseTo(expected, 6);
  });
  it("is neutral for gangs", () => {
    const gang = contextFor({ kind: "training", replicas: 2 });
    expect(spreadScorer.score(gang, candidate(gang, "p1", { provider: "aws" }), [peerA])).toBe(100);
  });
});

describe("locality scorer", () => {
  const ctx = contextFor({ kind: "training", replicas: 4 });
  const inDomain = (id: string, fabricDomain: string) => candidate(ctx, id, { fabricDomain });
  it.each([
    ["whole gang in one domain", [inDomain("b", "f1"), inDomain("c", "f1")], 100],
    ["half the gang in the domain", [inDomain("b", "f1"), inDomain("c", "f2"), inDomain("d", "f2")], 50],
    ["alone in its domain", [inDomain("b", "f2")], 50],
  ])("%s", (_n, peers, expected) => {
    expect(localityScorer.score(ctx, inDomain("a", "f1"), peers)).toBeCloseTo(expected, 6);
  });
  it("is neutral outside gangs", () => {
    const batch = contextFor({ kind: "batch" });
    expect(localityScorer.score(batch, candidate(batch, "a", { fabricDomain: "f1" }), [])).toBe(100);
  });
});

describe("scorer registry", () => {
  it("names are unique kebab-case and bounds never undercut scores", () => {
    const names = SCORERS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    const ctx = contextFor({ demandByRegion: { "eu-west": 1 }, dataRegion: "eu-west" });
    ctx.cheapestCost = replicaCost(ctx, 1_000_000, "us-east");
    const c = candidate(ctx, "a", { region: "us-east", prices: { "H100-80GB": ["2.50"] } });
    const bucket = c.offer.slots["on-demand"]!.bucket;
    for (const s of SCORERS) {
      expect(s.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
      const score = s.score(ctx, c, []);
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(100);
      if (s.bound) expect(s.bound(ctx, bucket, c.pricePerGpuHour)).toBeGreaterThanOrEqual(score - 1e-9);
    }
  });
});
