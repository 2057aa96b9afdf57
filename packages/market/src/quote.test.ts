import { defaultJobSpec, type JobSpec } from "@capa/domain";
import { describe, expect, it } from "vitest";
import type { OfferSource } from "./offers.js";
import { expectedCostOf, type PendingJob, type QuoteQueue, quote, type RunningAllocation } from "./quote.js";
import { price, source, usd } from "./testing/fixtures.js";

const NOW = 1_000_000;
const spec = (overrides: Partial<JobSpec>) => defaultJobSpec({ expectedDurationSeconds: 3600, ...overrides });
const EMPTY_QUEUE = { running: [] };

const FLEET: OfferSource[] = [
  source("cheap", "eu-west", "H100-80GB", [price("H100-80GB", "2.49", "1.20")], { count: 4, busy: 2 }),
  source("mid", "eu-west", "H100-80GB", [price("H100-80GB", "2.99")], { count: 4 }),
  source("dear", "us-east", "H100-80GB", [price("H100-80GB", "3.50")], { count: 8 }),
  source("a100", "us-east", "A100-40GB", [price("A100-40GB", "1.10", "0.60")], { count: 2 }),
];

describe("quote: infeasible specs say why", () => {
  it("names the cheapest offer when maxPrice is below every offer", () => {
    const q = quote(spec({ gpuModels: ["H100-80GB"], maxPricePerGpuHour: usd("1.00") }), FLEET, EMPTY_QUEUE, NOW);
    expect(q).toMatchObject({
      feasibleOffers: 0,
      reasonCode: "over-max-price",
      reason: "no offer at or below $1.00/GPU-h; cheapest is H100-80GB at $2.49/GPU-h in eu-west",
      estimatedStartMs: undefined,
      startBasis: "infeasible",
      estimatedHourly: 0,
      cheapest: { agentId: "cheap", region: "eu-west", gpuModel: "H100-80GB", pricePerGpuHour: usd("2.49") },
    });
  });

  it("says no offer matches when no agent has the model", () => {
    const q = quote(spec({ gpuModels: ["B200-180GB"] }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.reasonCode).toBe("no-matching-offer");
    expect(q.reason).toMatch(/no offer matches/);
  });

  it("counts an agent with too few GPUs for one replica as no offer", () => {
    const q = quote(spec({ gpuModels: ["A100-40GB"], gpusPerReplica: 4 }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.reasonCode).toBe("no-matching-offer");
  });

  it("reports insufficient capacity with the numbers when the whole job cannot fit", () => {
    const q = quote(spec({ gpuModels: ["H100-80GB"], gpusPerReplica: 4, replicas: 5 }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.reasonCode).toBe("insufficient-capacity");
    expect(q.reason).toBe("feasible offers hold at most 4 of 5 replica(s) of 4 GPU(s)");
    expect(q.feasibleOffers).toBe(3);
  });

  it("honours regions, exclusions, residency and node selectors", () => {
    const labelled = [{ ...FLEET[2]!, labels: { tier: "gold" } }, FLEET[0]!];
    expect(
      quote(spec({ regions: ["us-east"], gpuModels: ["H100-80GB"] }), FLEET, EMPTY_QUEUE, NOW).feasibleOffers,
    ).toBe(1);
    expect(
      quote(spec({ excludeRegions: ["eu-west"], gpuModels: ["H100-80GB"] }), FLEET, EMPTY_QUEUE, NOW).feasibleOffers,
    ).toBe(1);
    expect(quote(spec({ residency: "eu" }), FLEET, EMPTY_QUEUE, NOW).feasibleOffers).toBe(2);
    expect(quote(spec({ nodeSelector: { tier: "gold" } }), labelled, EMPTY_QUEUE, NOW).chosen[0]?.agentId).toBe("dear");
  });
});

describe("quote: price", () => {
  it("prices the cheapest free GPUs: hourly = price × GPUs, total = hourly × expected duration", () => {
    const q = quote(spec({ gpuModels: ["H100-80GB"], gpusPerReplica: 2 }), FLEET, EMPTY_QUEUE, NOW);
    expect(q).toMatchObject({
      feasibleOffers: 3,
      estimatedHourly: usd("4.98"),
      estimatedTotal: usd("4.98"),
      estimatedStartMs: NOW,
      startBasis: "free-now",
      reasonCode: "none",
      reason: "",
    });
    expect(q.chosen).toEqual([
      {
        agentId: "cheap",
        region: "eu-west",
        gpuModel: "H100-80GB",
        pricePerGpuHour: usd("2.49"),
        interruptible: false,
        replicas: 1,
      },
    ]);
  });

  it("fills replicas cheapest first across agents", () => {
    // cheap has 2 free GPUs (1 replica of 2), mid 4 (2 replicas): 2.49×2 + 2.99×2×2
    const q = quote(spec({ gpuModels: ["H100-80GB"], gpusPerReplica: 2, replicas: 3 }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.chosen.map((c) => [c.agentId, c.replicas])).toEqual([
      ["cheap", 1],
      ["mid", 2],
    ]);
    expect(q.estimatedHourly).toBe(usd("4.98") + usd("11.96"));
  });

  it("rounds the total half-up per replica, as the ledger charges each task", () => {
    // 1 micro/GPU-h for half an hour is 0.5 micro → 1 per replica; three replicas → 3 (not round(1.5) = 2)
    const tiny = [
      source("t", "eu-west", "L4-24GB", [{ gpuModel: "L4-24GB", onDemandPerHour: 1, interruptiblePerHour: 0 }]),
    ];
    const q = quote(spec({ replicas: 3, expectedDurationSeconds: 1800 }), tiny, EMPTY_QUEUE, NOW);
    expect(q.estimatedHourly).toBe(3);
    expect(q.estimatedTotal).toBe(3);
  });

  it("has no total without an expected duration, but still an hourly rate", () => {
    const q = quote(spec({ gpuModels: ["A100-40GB"], expectedDurationSeconds: 0 }), FLEET, EMPTY_QUEUE, NOW);
    expect(expectedCostOf(q)).toEqual({ hourly: usd("1.10"), total: 0 });
  });

  it("prices an interruptible job at the cheaper interruptible price where offered", () => {
    const q = quote(spec({ gpuModels: ["A100-40GB"], interruptible: true }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.estimatedHourly).toBe(usd("0.60"));
    expect(q.chosen[0]?.interruptible).toBe(true);
  });

  it("lists cheapest and median price per (region, model) over feasible offers", () => {
    const q = quote(spec({ gpuModels: ["H100-80GB"] }), FLEET, EMPTY_QUEUE, NOW);
    expect(q.regions).toEqual([
      {
        region: "eu-west",
        gpuModel: "H100-80GB",
        offers: 2,
        freeGpus: 6,
        cheapestPricePerGpuHour: usd("2.49"),
        medianPricePerGpuHour: usd("2.49"),
      },
      {
        region: "us-east",
        gpuModel: "H100-80GB",
        offers: 1,
        freeGpus: 8,
        cheapestPricePerGpuHour: usd("3.50"),
        medianPricePerGpuHour: usd("3.50"),
      },
    ]);
  });

  it("follows a provider's price change: a new quote uses the new price", () => {
    const raised = FLEET.map((s) => (s.agentId === "a100" ? { ...s, prices: [price("A100-40GB", "1.35")] } : s));
    const before = quote(spec({ gpuModels: ["A100-40GB"] }), FLEET, EMPTY_QUEUE, NOW);
    const after = quote(spec({ gpuModels: ["A100-40GB"] }), raised, EMPTY_QUEUE, NOW);
    expect([before.estimatedHourly, after.estimatedHourly]).toEqual([usd("1.10"), usd("1.35")]);
  });
});

describe("quote: estimated start", () => {
  const busy = [
    source("x", "eu-west", "H100-80GB", [price("H100-80GB", "2.00")], { count: 4, busy: 4 }),
    source("y", "eu-west", "H100-80GB", [price("H100-80GB", "2.20")], { count: 4, busy: 3 }),
  ];

  it("is the earliest expected end after which enough GPUs are free", () => {
    const running = [
      { agentId: "x", gpuIndices: [0, 1], expectedEndMs: NOW + 60_000 },
      { agentId: "x", gpuIndices: [2, 3], expectedEndMs: NOW + 30_000 },
      { agentId: "y", gpuIndices: [0, 1, 2], expectedEndMs: NOW + 10_000 },
    ];
    // 4 GPUs on one agent: y frees 3 at +10 s (then it has 4), so +10 s
    const q = quote(spec({ gpusPerReplica: 4 }), busy, { running }, NOW);
    expect(q).toMatchObject({ estimatedStartMs: NOW + 10_000, startBasis: "expected-ends" });
    // two replicas of 4: the second needs x entirely free, at +60 s
    expect(quote(spec({ gpusPerReplica: 4, replicas: 2 }), busy, { running }, NOW).estimatedStartMs).toBe(NOW + 60_000);
  });

  it("counts an allocation past its expected end as ending now", () => {
    const running = [{ agentId: "y", gpuIndices: [0, 1, 2], expectedEndMs: NOW - 5_000 }];
    expect(quote(spec({ gpusPerReplica: 4 }), busy, { running }, NOW).estimatedStartMs).toBe(NOW);
  });

  it("is unknown when the capacity is held by allocations without an expected end", () => {
    const running = [{ agentId: "y", gpuIndices: [0, 1, 2], expectedEndMs: 0 }];
    const q = quote(spec({ gpusPerReplica: 4 }), busy, { running }, NOW);
    expect(q).toMatchObject({ estimatedStartMs: undefined, startBasis: "unknown", reasonCode: "none" });
    expect(q.estimatedHourly).toBe(usd("8.00"));
  });

  it("ignores allocations on agents the job cannot use", () => {
    const running = [{ agentId: "elsewhere", gpuIndices: [0, 1, 2, 3], expectedEndMs: NOW + 1 }];
    expect(quote(spec({ gpusPerReplica: 4 }), busy, { running }, NOW).startBasis).toBe("unknown");
  });
});

describe("quote: start simulation over running work and the queue ahead", () => {
  const T = NOW + 10_000;
  const T2 = NOW + 20_000;
  // Both agents fully busy: a (cheaper) frees at T, b at T2.
  const BUSY = [
    source("a", "eu-west", "H100-80GB", [price("H100-80GB", "2.00")], { count: 4, busy: 4 }),
    source("b", "us-east", "H100-80GB", [price("H100-80GB", "2.50")], { count: 4, busy: 4 }),
  ];
  const ENDS: RunningAllocation[] = [
    { agentId: "a", gpuIndices: [0, 1, 2, 3], expectedEndMs: T },
    { agentId: "b", gpuIndices: [0, 1, 2, 3], expectedEndMs: T2 },
  ];
  const FREE = [
    source("f1", "eu-west", "H100-80GB", [price("H100-80GB", "2.00")], { count: 4 }),
    source("f2", "us-east", "H100-80GB", [price("H100-80GB", "3.00")], { count: 4 }),
  ];
  // A gang of 2×4 fits only in eu-west, whose e1 frees at +30 s; us-east has room for one replica only.
  const GANG_FLEET = [
    source("e1", "eu-west", "H100-80GB", [price("H100-80GB", "2.00")], { count: 4, busy: 4 }),
    source("e2", "eu-west", "H100-80GB", [price("H100-80GB", "2.00")], { count: 4 }),
    source("u1", "us-east", "H100-80GB", [price("H100-80GB", "3.00")], { count: 4 }),
  ];
  const GANG_ENDS: RunningAllocation[] = [{ agentId: "e1", gpuIndices: [0, 1, 2, 3], expectedEndMs: NOW + 30_000 }];
  const waiting = (
    jobId: string,
    overrides: Partial<JobSpec>,
    createdAtMs = NOW - 5_000,
    replicas = 1,
  ): PendingJob => ({
    jobId,
    spec: spec({ gpusPerReplica: 4, ...overrides }),
    replicas: overrides.replicas ?? replicas,
    createdAtMs,
  });

  const cases: {
    name: string;
    job: Partial<JobSpec>;
    fleet: OfferSource[];
    queue: QuoteQueue;
    start: number | undefined;
    basis: string;
    ahead?: number;
    agents?: string[];
  }[] = [
    {
      name: "free now → now",
      job: { gpusPerReplica: 4 },
      fleet: FREE,
      queue: EMPTY_QUEUE,
      start: NOW,
      basis: "free-now",
      agents: ["f1"],
    },
    {
      name: "busy until T → T",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS },
      start: T,
      basis: "expected-ends",
      agents: ["a"],
    },
    {
      name: "a higher-priority job queued ahead takes a at T → T2",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: 5 })] },
      start: T2,
      basis: "queue",
      ahead: 1,
      agents: ["b"],
    },
    {
      name: "an equal-priority job submitted earlier is ahead too → T2",
      job: { gpusPerReplica: 4, priority: 2 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: 2 })] },
      start: T2,
      basis: "queue",
      ahead: 1,
    },
    {
      name: "a lower-priority job queued behind does not delay it → T",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: -1 })] },
      start: T,
      basis: "expected-ends",
      ahead: 0,
      agents: ["a"],
    },
    {
      name: "a job ahead that ends before b frees its GPUs first (T + 5 s)",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: 1, expectedDurationSeconds: 5 })] },
      start: T + 5_000,
      basis: "queue",
      agents: ["a"],
    },
    {
      name: "a job ahead confined to another region does not take a",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: 1, regions: ["us-east"] })] },
      start: T,
      basis: "expected-ends",
      ahead: 1,
    },
    {
      name: "a job ahead that can never fit is left out",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: { running: ENDS, pending: [waiting("p", { priority: 1, replicas: 3 })] },
      start: T,
      basis: "expected-ends",
      ahead: 0,
    },
    {
      name: "a job ahead that does not fit yet does not block a smaller one behind it",
      job: { gpusPerReplica: 1 },
      fleet: [...BUSY, source("s", "eu-west", "H100-80GB", [price("H100-80GB", "3.00")], { count: 1 })],
      queue: { running: ENDS, pending: [waiting("p", { priority: 1 })] },
      start: NOW,
      basis: "free-now",
      agents: ["s"],
    },
    {
      name: "a job ahead takes the cheapest free GPUs: still now, on the next cheapest",
      job: { gpusPerReplica: 4 },
      fleet: FREE,
      queue: { running: [], pending: [waiting("p", { priority: 1 })] },
      start: NOW,
      basis: "free-now",
      agents: ["f2"],
    },
    {
      name: "unknown durations → unknown",
      job: { gpusPerReplica: 4 },
      fleet: BUSY,
      queue: {
        running: [ENDS[0]!, { ...ENDS[1]!, expectedEndMs: 0 }],
        pending: [waiting("p", { priority: 1, expectedDurationSeconds: 0 })],
      },
      start: undefined,
      basis: "unknown",
    },
    {
      name: "a batch job of 2×4 spans regions and starts now",
      job: { gpusPerReplica: 4, replicas: 2 },
      fleet: GANG_FLEET,
      queue: { running: GANG_ENDS },
      start: NOW,
      basis: "free-now",
      agents: ["e2", "u1"],
    },
    {
      name: "a gang of 2×4 waits for a whole (region, model) to hold it",
      job: { gpusPerReplica: 4, replicas: 2, kind: "training" },
      fleet: GANG_FLEET,
      queue: { running: GANG_ENDS },
      start: NOW + 30_000,
      basis: "expected-ends",
      agents: ["e1", "e2"],
    },
  ];

  it.each(cases)("$name", ({ job, fleet, queue, start, basis, ahead, agents }) => {
    const q = quote(spec(job), fleet, queue, NOW);
    expect(q).toMatchObject({ estimatedStartMs: start, startBasis: basis, reasonCode: "none", reason: "" });
    if (ahead !== undefined) expect(q.queuedAhead).toBe(ahead);
    if (agents) expect(q.chosen.map((c) => c.agentId)).toEqual(agents);
  });

  it("says why a start is unknown", () => {
    const q = quote(
      spec({ gpusPerReplica: 4 }),
      BUSY,
      {
        running: [ENDS[0]!, { ...ENDS[1]!, expectedEndMs: 0 }],
        pending: [waiting("p", { expectedDurationSeconds: 0 })],
      },
      NOW,
    );
    expect(q.startDetail).toBe(
      "GPUs this job needs stay held by 1 running allocation(s) without an expected end and " +
        "1 job(s) queued ahead without an expected duration",
    );
    // Without a start the price falls back to the cheapest total capacity.
    expect(q.chosen.map((c) => c.agentId)).toEqual(["a"]);
  });

  it("prices the job on the GPUs it gets at its start", () => {
    const q = quote(spec({ gpusPerReplica: 4 }), FREE, { running: [], pending: [waiting("p", { priority: 1 })] }, NOW);
    expect(q.estimatedHourly).toBe(usd("12.00"));
  });

  it("refuses a gang no single (region, model) can hold, however long it waits", () => {
    const q = quote(spec({ gpusPerReplica: 4, replicas: 3, kind: "training" }), GANG_FLEET, { running: [] }, NOW);
    expect(q).toMatchObject({ reasonCode: "insufficient-capacity", startBasis: "infeasible" });
    expect(q.reason).toBe(
      "feasible offers hold at most 2 of 3 replica(s) of 4 GPU(s) in one region and GPU model (a gang does not span them)",
    );
  });

  it("does not depend on the order of the pending list", () => {
    const pending = [
      waiting("p1", { priority: 1, expectedDurationSeconds: 5 }, NOW - 2_000),
      waiting("p2", { priority: 1, expectedDurationSeconds: 60 }, NOW - 1_000),
      waiting("p3", { priority: 3, expectedDurationSeconds: 1 }, NOW - 500),
    ];
    const forward = quote(spec({ gpusPerReplica: 4 }), BUSY, { running: ENDS, pending }, NOW);
    const backward = quote(spec({ gpusPerReplica: 4 }), BUSY, { running: ENDS, pending: [...pending].reverse() }, NOW);
    expect(backward).toEqual(forward);
    // a frees at T: p3 (priority 3) holds it until T+1 s, then p1 (older) until T+6 s, then p2 (still ahead of
    // this job) until T+66 s; b frees at T2 → T2.
    expect(forward).toMatchObject({ estimatedStartMs: T2, startBasis: "queue", queuedAhead: 3 });
  });

  it("stops at the event cap and says so", () => {
    const pending = Array.from({ length: 5 }, (_, i) => waiting(`p${i}`, { priority: 1, gpusPerReplica: 1 }));
    const q = quote(spec({ gpusPerReplica: 4 }), BUSY, { running: ENDS, pending }, NOW, { maxStartEvents: 3 });
    expect(q).toMatchObject({ estimatedStartMs: undefined, startBasis: "event-cap", queuedAhead: 5 });
    expect(q.startDetail).toBe(
      `the start simulation stopped after 3 events at ${new Date(NOW).toISOString()}; the job starts no earlier`,
    );
    expect(q.chosen.map((c) => c.agentId)).toEqual(["a"]);
  });

  it("a long queue ahead hits the default event cap", () => {
    const pending = Array.from({ length: 3_000 }, (_, i) =>
      waiting(`p${i}`, { priority: 1, gpusPerReplica: 1, expectedDurationSeconds: 60 }, NOW - 10_000 + i),
    );
    const q = quote(spec({ gpusPerReplica: 4 }), BUSY, { running: ENDS, pending }, NOW);
    expect(q.startBasis).toBe("event-cap");
    expect(q.startDetail).toMatch(/^the start simulation stopped after 10000 events at /);
  });
});

describe("quote: CPU-only jobs", () => {
  it("cost nothing and start now when an agent matches", () => {
    const q = quote(spec({ gpusPerReplica: 0 }), FLEET, EMPTY_QUEUE, NOW);
    expect(q).toMatchObject({ feasibleOffers: 4, estimatedHourly: 0, estimatedStartMs: NOW });
  });
});

describe("quote: what it keeps per source", () => {
  const shapes: Partial<JobSpec>[] = [
    { gpuModels: ["H100-80GB"] },
    { gpuModels: ["H100-80GB"], interruptible: true },
    { gpuModels: ["a100-40gb"] },
    { gpuModels: [], minVramMib: 50_000 },
    { gpuModels: [], gpusPerReplica: 4 },
    { gpuModels: ["H100-80GB", "A100-40GB"], interruptible: true, replicas: 3 },
  ];

  it("answers every job shape on one fleet as it does on a fresh copy of that fleet", () => {
    for (let round = 0; round < 2; round++)
      for (const shape of shapes)
        expect(quote(spec(shape), FLEET, EMPTY_QUEUE, NOW)).toEqual(
          quote(spec(shape), structuredClone(FLEET), EMPTY_QUEUE, NOW),
        );
  });

  it("sees a changed agent: a new source object replaces what was kept for the old one", () => {
    const before = quote(spec({ gpuModels: ["H100-80GB"] }), FLEET, EMPTY_QUEUE, NOW);
    expect(before.chosen).toMatchObject([{ agentId: "cheap", replicas: 1 }]);
    const allBusy = source("cheap", "eu-west", "H100-80GB", [price("H100-80GB", "2.49", "1.20")], {
      count: 4,
      busy: 4,
    });
    const after = quote(spec({ gpuModels: ["H100-80GB"] }), [allBusy, ...FLEET.slice(1)], EMPTY_QUEUE, NOW);
    expect(after.chosen).toMatchObject([{ agentId: "mid", replicas: 1 }]);
    expect(after.startBasis).toBe("free-now");
  });
});
