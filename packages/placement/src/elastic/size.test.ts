import { describe, expect, it } from "vitest";
import { PlacementEngine } from "../engine.js";
import { agent, allocation, NOW, request, stateOf } from "../test-fixtures.js";
import { decideSize, proposeSizes, type SizeInput, type SizeOption } from "./size.js";

/** `fits(size, $/h)`: a gang of `size` fits at that hourly price; `no(size)`: it does not fit. */
const fits = (size: number, hourlyUsd: number, costUsd = hourlyUsd): SizeOption => ({
  size,
  fits: true,
  hourly: hourlyUsd * 1_000_000,
  cost: costUsd * 1_000_000,
});
const no = (size: number, why = "1 gang-does-not-fit-region"): SizeOption => ({
  size,
  fits: false,
  hourly: 0,
  cost: 0,
  why,
});

describe("decideSize (elastic gangs)", () => {
  const cases: Array<[string, SizeInput, number, string]> = [
    [
      "starts at min when only min fits",
      { min: 2, max: 4, current: 0, options: [no(4), no(3), fits(2, 4)] },
      2,
      "start",
    ],
    [
      "starts at max when max fits at one price",
      { min: 2, max: 4, current: 0, options: [fits(4, 8), fits(3, 6), fits(2, 4)] },
      4,
      "start",
    ],
    [
      "takes the largest size that fits",
      { min: 2, max: 4, current: 0, options: [no(4), fits(3, 6), fits(2, 4)] },
      3,
      "start",
    ],
    ["nothing when not even min fits", { min: 2, max: 4, current: 0, options: [no(4), no(3), no(2)] }, 0, "none"],
    [
      "grows when more fits at the same price per worker",
      { min: 2, max: 4, current: 2, options: [fits(4, 8), fits(3, 6), fits(2, 4)] },
      4,
      "grow",
    ],
    [
      "keeps its size when nothing larger fits",
      { min: 2, max: 4, current: 2, options: [no(4), no(3), fits(2, 4)] },
      2,
      "keep",
    ],
    [
      "shrinks when its size no longer fits (a lost agent)",
      { min: 2, max: 4, current: 4, options: [no(4), fits(3, 6), fits(2, 4)] },
      3,
      "shrink",
    ],
    // 2 workers at $2/h each; growing to 4 adds two at $10/h: average $6 per worker, 3× the cheapest.
    [
      "does not grow onto GPUs that triple the price per worker",
      { min: 2, max: 4, current: 2, options: [fits(4, 24), fits(3, 14), fits(2, 4)] },
      2,
      "keep",
    ],
    // Growing to 3 adds one worker at $3/h: average $2.33 per worker, 1.17× the cheapest.
    [
      "grows when the added workers cost a little more",
      { min: 2, max: 4, current: 2, options: [no(4), fits(3, 7), fits(2, 4)] },
      3,
      "grow",
    ],
    [
      "stays within the budget left",
      {
        min: 1,
        max: 4,
        current: 0,
        budgetLeft: 5_000_000,
        options: [fits(4, 8, 8), fits(3, 6, 6), fits(2, 4, 4), fits(1, 2, 2)],
      },
      2,
      "start",
    ],
    [
      "nothing when even min is over budget",
      { min: 2, max: 3, current: 0, budgetLeft: 1_000_000, options: [fits(3, 6), fits(2, 4)] },
      0,
      "none",
    ],
    ["min equal to max is a fixed gang", { min: 3, max: 3, current: 0, options: [fits(3, 6)] }, 3, "start"],
    [
      "ignores sizes out of min..max",
      { min: 2, max: 3, current: 0, options: [fits(5, 10), fits(3, 6), fits(2, 4)] },
      3,
      "start",
    ],
  ];
  it.each(cases)("%s", (_name, input, size, change) => {
    const d = decideSize(input);
    expect(d.size).toBe(size);
    expect(d.change).toBe(change);
    if (size > 0) expect(d.verdicts.find((v) => v.size === size)?.verdict).toBe("chosen");
  });

  it("names every size's verdict and says why the larger sizes lost", () => {
    const d = decideSize({
      min: 2,
      max: 4,
      current: 4,
      options: [no(4, "3 insufficient-gpus"), fits(3, 6), fits(2, 4)],
    });
    expect(d.verdicts.map((v) => `${v.size}:${v.verdict}`)).toEqual(["4:does-not-fit", "3:chosen", "2:ranked lower"]);
    expect(d.summary).toBe(
      "elastic 2..4: shrink 4 → 3 workers at $6.00/h; larger: 4 does-not-fit (3 insufficient-gpus)",
    );
    expect(
      decideSize({ min: 2, max: 4, current: 0, options: [no(4), no(3), no(2, "2 insufficient-gpus")] }).summary,
    ).toBe("elastic 2..4: not even 2 worker(s) fit now (does-not-fit (2 insufficient-gpus))");
  });

  it("weights are data: all on workers, it grows onto any price", () => {
    const input = { min: 2, max: 4, current: 2, options: [fits(4, 24), fits(2, 4)] };
    expect(decideSize(input).size).toBe(2);
    expect(decideSize({ ...input, weights: { workers: 1, unitCost: 0 } }).size).toBe(4);
  });
});

describe("proposeSizes", () => {
  it.each([
    [2, 4, 16, [4, 3, 2]],
    [3, 3, 16, [3]],
    [4, 2, 16, []],
    [1, 100, 4, [100, 67, 34, 1]],
  ])("min %i max %i (limit %i) → %j", (min, max, limit, sizes) => {
    expect(proposeSizes(min, max, limit)).toEqual(sizes);
  });
});

describe("PlacementEngine with an elastic gang", () => {
  const engine = new PlacementEngine();
  const opts = { nowMs: NOW, seed: 1 };
  const one = (id: string, usd = "2.00") => agent(id, { gpus: "1xH100-80GB", prices: { "H100-80GB": [usd] } });
  const spec = {
    kind: "training" as const,
    replicas: 4,
    gpusPerReplica: 1,
    elastic: { min: 2, max: 4 },
    allowFabricSpanning: true,
  };

  it("starts with min when only min fits, on the lowest replicas, and says so", () => {
    const state = stateOf(
      [one("a"), one("b"), one("c"), one("d")],
      [allocation("x-0", "c", [0]), allocation("x-1", "d", [0])],
    );
    const plan = engine.place(state, request("e", spec), opts);
    expect(plan.outcome).toBe("placed");
    expect(plan.placements.map((p) => p.replica)).toEqual([0, 1]);
    expect(plan.placements.map((p) => p.agentId).sort()).toEqual(["a", "b"]);
    expect(plan.elastic).toMatchObject({ size: 2, change: "start" });
    expect(plan.explanation.summary[0]).toBe(
      "elastic 2..4: 2 worker(s) at $4.00/h; larger: 4 does-not-fit (4 gang-does-not-fit-region), 3 does-not-fit (4 gang-does-not-fit-region)",
    );
  });

  it("a running gang counting its own GPUs as free sees that it can grow", () => {
    const own = [allocation("e-0", "a", [0], { gang: true }), allocation("e-1", "b", [0], { gang: true })];
    const state = stateOf([one("a"), one("b"), one("c"), one("d")], own);
    const plan = engine.place(state, { ...request("e", spec), elastic: { current: 2, releasing: own } }, opts);
    expect(plan.elastic).toMatchObject({ previous: 2, size: 4, change: "grow" });
    // Asked without its own GPUs, only the two free ones count: no reason to grow.
    expect(engine.place(state, { ...request("e", spec), elastic: { current: 2 } }, opts).elastic).toMatchObject({
      size: 2,
      change: "keep",
    });
  });

  it("grows cheapest first", () => {
    const state = stateOf([one("a", "9.00"), one("b", "1.00"), one("c", "1.50"), one("d", "1.20"), one("z", "1.10")]);
    const plan = engine.place(state, request("e", { ...spec, replicas: 3, elastic: { min: 2, max: 3 } }), opts);
    expect(plan.placements.map((p) => p.agentId).sort()).toEqual(["b", "d", "z"]);
  });

  it("shrinks after a loss and names the cause", () => {
    const state = stateOf([one("a"), one("b"), one("c")]);
    const plan = engine.place(state, { ...request("e", spec), elastic: { current: 4, cause: "task e-3 lost" } }, opts);
    expect(plan.placements).toHaveLength(3);
    expect(plan.elastic?.change).toBe("shrink");
    expect(plan.explanation.summary[0]).toContain("shrink 4 → 3 workers");
    expect(plan.explanation.summary[0]).toContain("after: task e-3 lost");
  });

  it("below min it is an ordinary gang of min: pending when it could fit later, unplaceable when never", () => {
    const state = stateOf([one("a"), one("b")], [allocation("x-0", "a", [0])]);
    const pending = engine.place(state, request("e", spec), opts);
    expect(pending.outcome).toBe("pending");
    expect(pending.elastic?.size).toBe(0);
    const never = engine.place(stateOf([one("a")]), request("e", spec), opts);
    expect(never.outcome).toBe("unplaceable");
    expect(never.explanation.summary[0]).toContain("not even 2 worker(s) fit now");
  });

  it("the budget left bounds the size", () => {
    const state = stateOf([one("a"), one("b"), one("c"), one("d")]);
    // $2/GPU-h for 1h: 2 workers cost $4, 3 cost $6.
    const r = {
      ...request("e", { ...spec, expectedDurationSeconds: 3600 }),
      elastic: { current: 0, budgetLeft: 5_000_000 },
    };
    expect(engine.place(state, r, opts).placements).toHaveLength(2);
  });
});
