/** Property tests: invariants that must hold for any fleet, any job sequence, any seed. */
import { type JobKind, priceFor } from "@capa/domain";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { transportationBound } from "./bound.js";
import { PlacementEngine } from "./engine.js";
import type { AgentView, PlacementRequest, Plan } from "./model.js";
import { ClusterState, fabricKeyOf } from "./state/cluster-state.js";
import { agent, NOW, request } from "./test-fixtures.js";

const MODELS = ["H100-80GB", "A100-80GB", "L4-24GB"] as const;
const REGIONS = ["us-east", "us-west", "eu-west", "eu-central", "ap-northeast"] as const;

const agentArb = fc
  .record({
    region: fc.constantFrom(...REGIONS),
    model: fc.constantFrom(...MODELS),
    gpus: fc.constantFrom(1, 2, 4, 8),
    price: fc.integer({ min: 30, max: 500 }),
    spot: fc.option(fc.integer({ min: 10, max: 400 }), { nil: undefined }),
    fabric: fc.constantFrom("", "f1", "f2"),
    provider: fc.constantFrom("aws", "gcp", "lambda"),
    reliability: fc.double({ min: 0.5, max: 1, noNaN: true }),
    unhealthy: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
    stale: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    draining: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  })
  .map((o) => ({
    region: o.region,
    provider: o.provider,
    fabricDomain: o.fabric,
    reliability: o.reliability,
    gpus: `${o.gpus}x${o.model}`,
    prices: { [o.model]: [(o.price / 100).toFixed(2), o.spot ? (o.spot / 100).toFixed(2) : undefined] } as Record<
      string,
      [string, string?]
    >,
    unhealthy: o.unhealthy === undefined ? [] : [o.unhealthy],
    draining: o.draining,
    lastSeenMs: o.stale ? NOW - 60_000 : NOW - 1_000,
  }));

const fleetArb = fc
  .array(agentArb, { minLength: 1, maxLength: 14 })
  .map((list) => list.map((o, i) => agent(`ag${String(i).padStart(2, "0")}`, o)));

const jobArb = fc.record({
  kind: fc.constantFrom<JobKind>("batch", "training", "inference"),
  replicas: fc.integer({ min: 1, max: 3 }),
  gpusPerReplica: fc.integer({ min: 0, max: 4 }),
  gpuModels: fc.subarray([...MODELS], { maxLength: 2 }),
  residency: fc.constantFrom("", "", "eu", "us"),
  maxPricePerGpuHour: fc.constantFrom(0, 0, 1_000_000, 2_500_000),
  priority: fc.integer({ min: 0, max: 3 }),
  interruptible: fc.boolean(),
  allowFabricSpanning: fc.boolean(),
  regions: fc.subarray([...REGIONS], { maxLength: 2 }),
  demandByRegion: fc.dictionary(fc.constantFrom(...REGIONS), fc.integer({ min: 1, max: 5 }), { maxKeys: 2 }),
});

const engine = new PlacementEngine();

function buildState(agents: AgentView[]): ClusterState {
  const state = new ClusterState();
  for (const a of agents) state.upsertAgent(a);
  return state;
}

/** Applies a plan the way the scheduler does: stop the victims, then commit each placement. */
function apply(state: ClusterState, req: PlacementRequest, plan: Plan): void {
  for (const p of plan.preemptions) state.removeAllocation(p.taskId);
  for (const p of plan.placements) {
    state.addAllocation({
      taskId: `${req.jobId}-${p.replica}`,
      jobId: req.jobId,
      agentId: p.agentId,
      gpuIndices: p.gpuIndices,
      priority: req.spec.priority,
      interruptible: req.spec.interruptible,
      pricePerGpuHour: p.pricePerGpuHour,
      startedAtMs: NOW,
      lastCheckpointMs: 0,
      gang: req.spec.kind === "training",
    });
  }
}

function checkPlan(state: ClusterState, req: PlacementRequest, plan: Plan): void {
  const spec = req.spec;
  if (plan.outcome === "placed" || plan.outcome === "preempting") {
    expect(plan.placements).toHaveLength(req.replicas.length);
  } else {
    expect(plan.placements).toEqual([]);
  }
  const seen = new Set<string>();
  for (const p of plan.placements) {
    const a = state.agent(p.agentId)!;
    expect(a.draining).toBe(false);
    expect(NOW - a.lastSeenMs).toBeLessThanOrEqual(30_000);
    if (spec.residency !== "") expect(a.residency).toBe(spec.residency);
    if (spec.regions.length > 0) expect(spec.regions).toContain(a.region);
    expect(p.gpuIndices).toHaveLength(spec.gpusPerReplica);
    if (spec.gpusPerReplica === 0) continue;
    if (spec.maxPricePerGpuHour > 0) expect(p.pricePerGpuHour).toBeLessThanOrEqual(spec.maxPricePerGpuHour);
    if (spec.gpuModels.length > 0) expect(spec.gpuModels).toContain(p.gpuModel);
    const onDemand = priceFor(a.prices, p.gpuModel, false);
    const spot = priceFor(a.prices, p.gpuModel, true);
    expect(p.pricePerGpuHour).toBe(p.interruptible ? spot : onDemand);
    if (!spec.interruptible) expect(p.interruptible).toBe(false);
    for (const i of p.gpuIndices) {
      const gpu = a.gpus.find((g) => g.index === i)!;
      expect(gpu.healthy && gpu.model === p.gpuModel).toBe(true);
      const key = `${p.agentId}/${i}`;
      expect(seen.has(key)).toBe(false);
      seen.add(key);
    }
  }
  if (spec.kind === "training" && plan.placements.length > 1 && spec.gpusPerReplica > 0) {
    expect(new Set(plan.placements.map((p) => `${p.region}/${p.gpuModel}`)).size).toBe(1);
    if (!spec.allowFabricSpanning) {
      expect(new Set(plan.placements.map((p) => fabricKeyOf(state.agent(p.agentId)!))).size).toBe(1);
    }
  }
}

describe("placement properties", () => {
  it("never over-commits a GPU, never violates residency, max price, model or region, gangs stay whole", () => {
    fc.assert(
      fc.property(fleetArb, fc.array(jobArb, { minLength: 1, maxLength: 12 }), fc.integer(), (fleet, jobs, seed) => {
        const state = buildState(fleet);
        jobs.forEach((job, n) => {
          const req = request(`job${n}`, job);
          const plan = engine.place(state, req, { nowMs: NOW, seed, relaxations: n % 3 === 0 });
          checkPlan(state, req, plan);
          apply(state, req, plan); // addAllocation throws OverCommitError on any double booking
        });
      }),
      { numRuns: 150 },
    );
  });

  it("is deterministic per seed, whatever order the state was built in", () => {
    fc.assert(
      fc.property(
        fleetArb,
        jobArb,
        fc.integer(),
        fc.constantFrom("cheapest", "balanced", "resilient"),
        (fleet, job, seed, profile) => {
          const one = buildState(fleet);
          const two = buildState([...fleet].reverse());
          const req = request("j", job);
          expect(engine.place(two, req, { nowMs: NOW, seed, profile })).toEqual(
            engine.place(one, req, { nowMs: NOW, seed, profile }),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("never costs less than the LP lower bound (a check on the bound: a placement below it would refute it)", () => {
    const simpleJob = fc.record({
      gpusPerReplica: fc.integer({ min: 1, max: 4 }),
      gpuModels: fc.subarray([...MODELS], { maxLength: 2 }),
      maxPricePerGpuHour: fc.constantFrom(0, 2_500_000),
    });
    fc.assert(
      fc.property(fleetArb, fc.array(simpleJob, { minLength: 1, maxLength: 12 }), fc.integer(), (fleet, jobs, seed) => {
        const state = buildState(fleet);
        let engineCost = 0;
        let placedAll = true;
        jobs.forEach((job, n) => {
          const req = request(`job${n}`, job);
          const plan = engine.place(state, req, { nowMs: NOW, seed, relaxations: false });
          if (plan.outcome !== "placed") placedAll = false;
          engineCost += plan.explanation.estimatedCost;
          apply(state, req, plan);
        });
        const capacity = new Map<string, number>();
        for (const a of fleet) {
          for (const g of a.gpus)
            if (g.healthy) capacity.set(`${a.id}/${g.model}`, (capacity.get(`${a.id}/${g.model}`) ?? 0) + 1);
        }
        const bound = transportationBound(
          jobs.map((job) => ({
            units: job.gpusPerReplica,
            options: fleet.flatMap((a) =>
              a.prices
                .filter((p) => job.gpuModels.length === 0 || (job.gpuModels as string[]).includes(p.gpuModel))
                .filter((p) => job.maxPricePerGpuHour === 0 || p.onDemandPerHour <= job.maxPricePerGpuHour)
                .map((p) => ({ resource: `${a.id}/${p.gpuModel}`, cost: p.onDemandPerHour * job.gpusPerReplica })),
            ),
          })),
          capacity,
        );
        if (placedAll) {
          expect(bound).toBeDefined();
          expect(engineCost).toBeGreaterThanOrEqual(bound! - 1e-6 * Math.max(1, bound!));
        }
      }),
      { numRuns: 200 },
    );
  });
});
