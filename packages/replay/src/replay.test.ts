import { BUILTIN_ENTRIES } from "@capa/catalog";
import { type AgentView, BUILTIN_PROFILES, mulberry32 } from "@capa/placement";
import { describe, expect, it } from "vitest";
import { runsLpBound } from "./bound.js";
import { BUILTIN_GPU_COUNT_MIX, generateFleet, offersFromCatalog, parseFleet } from "./fleet.js";
import { renderPlotSvg } from "./plot.js";
import {
  type PolicySpec,
  type ReplayOptions,
  type ReplayResult,
  replayJobs,
  replay as replayJobsOf,
} from "./simulate.js";
import { parseTrace, specOf, type TraceJob } from "./trace.js";

const replay = (trace: readonly TraceJob[], agents: AgentView[], policies: PolicySpec[], options: ReplayOptions) =>
  replayJobsOf(replayJobs(trace), agents, policies, options);

const NOW = Date.UTC(2026, 0, 1);
const cheapest = BUILTIN_PROFILES.find((p) => p.name === "cheapest")!;
const ALL: PolicySpec[] = [
  { name: "active", profile: cheapest },
  { name: "first-fit", baseline: "firstFit" },
  { name: "random", baseline: "random" },
  { name: "spread", baseline: "spread" },
  { name: "cheapest-single-region", baseline: "cheapestSingleRegion" },
];

const byName = (r: ReplayResult, name: string) => r.policies.find((p) => p.name === name)!;

describe("replay: a tiny instance computed by hand", () => {
  // Two one-GPU agents; "a-dear" sorts first, so first-fit takes it first.
  const fleet = parseFleet(
    [
      "agent_id,region,gpu_model,gpus,price_per_gpu_hour",
      "a-dear,us-east,H100-80GB,1,4.00",
      "b-cheap,eu-west,H100-80GB,1,2.00",
    ].join("\n"),
    NOW,
  );
  // j1, j2 at 0 for an hour take both GPUs; j3 arrives at 30 min, waits until 1 h, then runs 30 min;
  // j4 wants 2 GPUs on one agent: no agent has them, so it is unplaceable for everyone.
  const trace = parseTrace(
    [
      "job_id,submit_s,duration_s,gpus,gpu_model,kind",
      "j1,0,3600,1,H100,batch",
      "j2,0,3600,1,,batch",
      "j3,1800,1800,1,any,batch",
      "j4,10,60,2,,batch",
    ].join("\n"),
  );
  const result = replay(trace, fleet, ALL, { seed: 7, startMs: NOW });

  it("the engine puts the first job on the cheap agent and the late one too: $2 + $4 + $1", () => {
    const active = byName(result, "active");
    expect(active.placed).toBe(3);
    expect(active.unplaceable).toBe(1);
    expect(active.costMicros).toBe(7_000_000);
    // Waits 0, 0 and 1800 s.
    expect(active.meanQueueS).toBe(600);
    expect(active.p50QueueS).toBe(0);
    expect(active.p99QueueS).toBe(1800);
    // 9000 busy GPU-seconds over 2 GPUs × 5400 s.
    expect(active.utilisation).toBeCloseTo(9000 / 10_800, 4);
    expect(active.preemptions).toBe(0);
    expect(active.neverStarted).toBe(0);
  });

  it("first-fit by id takes the dear agent first, twice: $4 + $2 + $2", () => {
    const ff = byName(result, "first-fit");
    expect(ff.placed).toBe(3);
    expect(ff.costMicros).toBe(8_000_000);
    expect(ff.meanQueueS).toBe(600);
  });

  it("a price cap keeps a job off the dear agent: it waits for the cheap one", () => {
    const capped = parseTrace(
      [
        "job_id,submit_s,duration_s,gpus,gpu_model,kind,max_price",
        "j1,0,3600,1,,batch,",
        "j2,0,3600,1,,batch,3.00",
      ].join("\n"),
    );
    const r = replay(capped, fleet, [{ name: "first-fit", baseline: "firstFit" }], { seed: 1, startMs: NOW });
    const ff = byName(r, "first-fit");
    // j1 takes a-dear (first by id); j2 may only use b-cheap.
    expect(ff.costMicros).toBe(6_000_000);
    expect(ff.overPriceCap).toBe(0);
  });

  it("a higher-priority job preempts; the victim is billed for what it ran and restarts", () => {
    const one = parseFleet("agent_id,region,gpu_model,gpus,price_per_gpu_hour\nonly,eu-west,A100-80GB,1,1.00", NOW);
    const t = parseTrace(
      [
        "job_id,submit_s,duration_s,gpus,gpu_model,kind,priority",
        "low,0,3600,1,,batch,0",
        "high,1800,1800,1,,batch,5",
      ].join("\n"),
    );
    const r = replay(t, one, [{ name: "active", profile: cheapest }], { seed: 1, startMs: NOW });
    const p = byName(r, "active");
    expect(p.preemptions).toBe(1);
    // low runs 0.5 h, high 0.5 h, low again 1 h: 2 GPU-hours at $1.
    expect(p.costMicros).toBe(2_000_000);
    expect(p.completed).toBe(2);
    expect(p.makespanS).toBe(7200);
  });

  it("the LP bound of the engine's runs is at most its cost, and first-fit's ratio is higher", async () => {
    const specs = trace.map(specOf);
    const { DEFAULT_TABLES } = await import("@capa/placement");
    const active = await runsLpBound(byName(result, "active").runs, specs, fleet, NOW, DEFAULT_TABLES);
    const ff = await runsLpBound(byName(result, "first-fit").runs, specs, fleet, NOW, DEFAULT_TABLES);
    expect(active!.boundMicros).toBeLessThanOrEqual(active!.costMicros);
    expect(active!.ratio).toBeGreaterThanOrEqual(1);
    expect(ff!.ratio).toBeGreaterThan(active!.ratio);
  });
});

/** A synthetic trace: Poisson arrivals, 1–8 GPU jobs, some constrained; no shared data needed. */
function syntheticTrace(n: number, seed: number): TraceJob[] {
  const rng = mulberry32(seed);
  const header = "job_id,submit_s,duration_s,gpus,gpu_model,kind,max_price,priority";
  const rows: string[] = [header];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += Math.round(-Math.log(1 - rng()) * 120);
    const gpus = [1, 1, 1, 2, 4, 8][Math.floor(rng() * 6)]!;
    const model = rng() < 0.2 ? "H100-80GB|A100-80GB" : "";
    const cap = rng() < 0.3 ? (1.5 + rng() * 2).toFixed(2) : "";
    rows.push(`job-${i},${t},${60 + Math.floor(rng() * 7200)},${gpus},${model},batch,${cap},${rng() < 0.1 ? 3 : 0}`);
  }
  return parseTrace(rows.join("\n"));
}

describe("replay: determinism", () => {
  const fleetOf = (seed: number) =>
    generateFleet(60, offersFromCatalog(BUILTIN_ENTRIES), BUILTIN_GPU_COUNT_MIX, mulberry32(seed), NOW);
  const strip = (r: ReplayResult) => ({ ...r, policies: r.policies.map((p) => ({ ...p, wallMs: 0 })) });

  it("the same trace, fleet and seed give the same result, every policy, every run", () => {
    const trace = syntheticTrace(400, 3);
    const a = replay(trace, fleetOf(5), ALL, { seed: 11, startMs: NOW });
    const b = replay(trace, fleetOf(5), ALL, { seed: 11, startMs: NOW });
    expect(strip(a)).toEqual(strip(b));
    expect(byName(a, "active").placed).toBeGreaterThan(0);
    // Two full replays of five policies: about 2 s alone, past the 5 s default on a loaded 2-core machine.
  }, 60_000);

  it("another seed changes the random baseline's choices", () => {
    const trace = syntheticTrace(400, 3);
    const policies: PolicySpec[] = [{ name: "random", baseline: "random" }];
    const a = replay(trace, fleetOf(5), policies, { seed: 11, startMs: NOW });
    const b = replay(trace, fleetOf(5), policies, { seed: 12, startMs: NOW });
    expect(a.policies[0]!.runs.map((r) => r.tasks[0]?.agentId)).not.toEqual(
      b.policies[0]!.runs.map((r) => r.tasks[0]?.agentId),
    );
  });

  it("the engine is cheaper than every cost-blind baseline on a loaded synthetic instance", () => {
    const r = replay(syntheticTrace(400, 9), fleetOf(2), ALL, { seed: 1, startMs: NOW });
    const active = byName(r, "active");
    for (const name of ["first-fit", "random", "spread"]) {
      expect(active.costMicros).toBeLessThan(byName(r, name).costMicros);
    }
  });

  it("renders an SVG plot naming every policy", async () => {
    const r = replay(syntheticTrace(50, 1), fleetOf(1), ALL, { seed: 1, startMs: NOW, samples: 20 });
    const svg = await renderPlotSvg(r);
    expect(svg.startsWith("<svg")).toBe(true);
    for (const p of ALL) expect(svg).toContain(p.name);
    expect(svg).toContain("cumulative cost");
  });
});
