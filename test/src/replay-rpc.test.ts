/**
 * OperatorService.Replay and POST /api/v1/replay against a real scheduler: the same @capa/replay engine as
 * `capa replay` (the answer equals an in-process replay of the same inputs), bad rows named by line and column,
 * bounded inputs, one replay at a time, a wall-clock limit.
 */
import * as pb from "@capa/api";
import { BUILTIN_PROFILES } from "@capa/placement";
import { loadReplayInputs, type PolicySpec, replay, replayJobs } from "@capa/replay";
import { ReplayRunner } from "@capa/scheduler";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, httpCall, rpc, rpcError, silent, startHarness } from "./scheduler-harness.js";

const FLEET = [
  "agent_id,region,gpu_model,gpus,price_per_gpu_hour,spot_price",
  "a-dear,us-east,H100-80GB,2,4.00,",
  "b-cheap,eu-west,H100-80GB,2,2.00,1.00",
  "c-a100,eu-west,A100-80GB,4,1.50,",
].join("\n");

/** A trace with queueing: more GPU demand early than the fleet holds. */
function trace(jobs: number): string {
  const rows = ["job_id,submit_s,duration_s,gpus,gpu_model,kind,interruptible"];
  for (let i = 0; i < jobs; i++)
    rows.push(
      `j${i},${i * 300},${1800 + (i % 5) * 600},${1 + (i % 2)},${i % 3 === 0 ? "H100" : ""},batch,${i % 4 === 0 ? 1 : 0}`,
    );
  return `${rows.join("\n")}\n`;
}

const request = (over: Partial<pb.ReplayRequest>) =>
  pb.ReplayRequest.fromPartial({ traceCsv: trace(40), fleetCsv: FLEET, seed: 3, ...over });

describe("OperatorService.Replay", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  it("answers what @capa/replay computes in process for the same trace, fleet, profiles and seed", async () => {
    const res = await rpc<pb.ReplayResponse>((cb) =>
      h.operator.replay(request({ activeProfile: "cheapest", profiles: ["balanced"], plotSvg: true }), cb),
    );
    const inputs = loadReplayInputs({
      traceText: trace(40),
      traceFormat: "capa",
      traceName: "trace",
      fleetText: FLEET,
      agents: 0,
      seed: 3,
    });
    const profile = (name: string) => BUILTIN_PROFILES.find((p) => p.name === name)!;
    const policies: PolicySpec[] = [
      { name: "active", profile: profile("cheapest") },
      { name: "balanced", profile: profile("balanced") },
      { name: "first-fit", baseline: "firstFit" },
      { name: "random", baseline: "random" },
      { name: "spread", baseline: "spread" },
      { name: "cheapest-single-region", baseline: "cheapestSingleRegion" },
    ];
    const local = replay(replayJobs(inputs.trace), inputs.agents, policies, { seed: 3 });
    const figures = (p: {
      name: string;
      placed: number;
      costMicros: number;
      meanQueueS: number;
      p99QueueS: number;
      utilisation: number;
      preemptions: number;
    }) => ({
      name: p.name,
      placed: p.placed,
      costMicros: p.costMicros,
      meanQueueS: p.meanQueueS,
      p99QueueS: p.p99QueueS,
      utilisation: p.utilisation,
      preemptions: p.preemptions,
    });
    expect(res.policies.map(figures)).toEqual(local.policies.map(figures));
    expect({ jobs: res.jobs, agents: res.agents, gpus: res.gpus }).toEqual({ jobs: 40, agents: 3, gpus: 8 });
    // Some queueing happened (the trace overloads the fleet early), so the figures are not trivially zero.
    const active = res.policies.find((p) => p.name === "active")!;
    expect(active.p99QueueS).toBeGreaterThan(0);
    expect(active.costMicros).toBeGreaterThan(0);
    expect(active.timeline.length).toBeGreaterThan(1);
    expect(JSON.parse(res.plotVegaLiteJson)).toHaveProperty("vconcat");
    expect(res.plotSvg).toMatch(/^<svg/);
  });

  it("defaults to the scheduler's active profile, every baseline and a generated fleet", async () => {
    await rpc((cb) => h.operator.setPolicy({ profile: "balanced", profileDocument: "", weights: {}, actor: "t" }, cb));
    const res = await rpc<pb.ReplayResponse>((cb) =>
      h.operator.replay(pb.ReplayRequest.fromPartial({ traceCsv: trace(10), agents: 20 }), cb),
    );
    expect(res.policies.map((p) => p.name)).toEqual([
      "active",
      "first-fit",
      "random",
      "spread",
      "cheapest-single-region",
    ]);
    expect(res.agents).toBe(20);
    expect(res.fleetSource).toMatch(/^generated from/);
    expect(res.plotSvg).toBe("");
    await rpc((cb) => h.operator.setPolicy({ profile: "cheapest", profileDocument: "", weights: {}, actor: "t" }, cb));
  });

  it("names a bad trace row by line and column, an unknown profile or baseline by field", async () => {
    const bad = "job_id,submit_s,duration_s,gpus,gpu_model,kind\nj1,0,60,1,,batch\nj2,0,-5,1,,batch\n";
    const err = await rpcError((cb) => h.operator.replay(request({ traceCsv: bad }), cb));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("trace_csv: trace: line 3, column 3 (duration_s)");
    const fleetErr = await rpcError((cb) => h.operator.replay(request({ fleetCsv: "agent_id,region\nx,eu\n" }), cb));
    expect(fleetErr.code).toBe(status.INVALID_ARGUMENT);
    expect(fleetErr.details).toMatch(/^fleet_csv: fleet: /);
    const names = await rpcError((cb) =>
      h.operator.replay(request({ profiles: ["no-such"], baselines: ["first-fit", "worst-fit"] }), cb),
    );
    expect(names.code).toBe(status.INVALID_ARGUMENT);
    expect(names.details).toContain("profiles[0]: unknown profile");
    expect(names.details).toContain("baselines[1]: unknown baseline");
    const empty = await rpcError((cb) => h.operator.replay(pb.ReplayRequest.fromPartial({}), cb));
    expect(empty.details).toMatch(/^trace_csv: must not be empty/);
  });

  it("refuses inputs beyond its bounds with INVALID_ARGUMENT", async () => {
    const big = await rpcError((cb) => h.operator.replay(request({ traceCsv: trace(20_001) }), cb));
    expect(big.code).toBe(status.INVALID_ARGUMENT);
    expect(big.details).toContain("trace_csv: must hold at most 20000 jobs");
    const agents = await rpcError((cb) => h.operator.replay(request({ fleetCsv: "", agents: 5000 }), cb));
    expect(agents.details).toContain("agents: must be an integer in 0..2000");
    const profiles = await rpcError((cb) =>
      h.operator.replay(request({ profiles: Array.from({ length: 9 }, () => "cheapest") }), cb),
    );
    expect(profiles.details).toContain("profiles: must name at most 8 profiles");
  });

  it("serves the same replay over HTTP for the console (operators only), fields named as the JSON has them", async () => {
    const ok = await httpCall(h, "/api/v1/replay", {
      method: "POST",
      token: h.adminToken,
      body: { traceCsv: trace(12), fleetCsv: FLEET, seed: 3, baselines: ["none"] },
    });
    expect(ok.status).toBe(200);
    const body = ok.body as { policies: { name: string }[]; plot: { vconcat: unknown[] } };
    expect(body.policies.map((p) => p.name)).toEqual(["active"]);
    expect(body.plot.vconcat).toHaveLength(3);
    const bad = await httpCall(h, "/api/v1/replay", { method: "POST", token: h.adminToken, body: { traceCsv: "" } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("traceCsv");
    const tenant = await httpCall(h, "/api/v1/replay", {
      method: "POST",
      token: await h.mintKey("tenant", { tenant: "acme" }),
      body: { traceCsv: trace(2) },
    });
    expect(tenant.status).toBe(403);
  });
});

describe("ReplayRunner", () => {
  const input = {
    traceCsv: trace(400),
    traceFormat: "capa" as const,
    agents: 200,
    seed: 1,
    policies: [{ name: "active", profile: BUILTIN_PROFILES[0]! }],
    plotSvg: false,
  };
  const fields = { traceCsv: "trace_csv", fleetCsv: "fleet_csv" } as Parameters<ReplayRunner["run"]>[1];

  it("runs one replay at a time: a second one while the first runs is RESOURCE_EXHAUSTED", async () => {
    const runner = new ReplayRunner(silent);
    const first = runner.run(input, fields);
    // The first has taken the runner synchronously (its worker is still starting): the second is refused at once.
    await expect(runner.run(input, fields)).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    expect((await first).jobs).toBe(400);
    // Free again once it ended.
    expect((await runner.run({ ...input, traceCsv: trace(5) }, fields)).jobs).toBe(5);
  });

  it("stops a replay past its wall-clock limit", async () => {
    const runner = new ReplayRunner(silent, 1);
    await expect(runner.run(input, fields)).rejects.toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      message: expect.stringContaining("ran past its limit"),
    });
  });
});
