import { describe, expect, it } from "vitest";
import { InvalidMarketQueryError } from "./errors.js";
import { globToRegExp } from "./glob.js";
import { toOfferSource } from "./offers.js";
import { type OrderBookFilter, type OrderBookSort, orderBook } from "./order-book.js";
import { price, source, usd } from "./testing/fixtures.js";

const NOW = 10_000;
const FLEET = [
  source("a1", "eu-west", "H100-80GB", [price("H100-80GB", "2.49", "1.20")], { busy: 2, lastSeenMs: 9_000 }),
  source("a2", "eu-west", "H100-80GB", [price("H100-80GB", "2.99")], { count: 4, lastSeenMs: 9_500 }),
  source("a3", "eu-west", "H100-80GB", [price("H100-80GB", "3.50", "1.50")], { count: 2, busy: 2, lastSeenMs: 8_000 }),
  source("a4", "us-west", "A100-40GB", [price("A100-40GB", "1.10", "0.60")], { count: 4, lastSeenMs: 7_000 }),
  source("a5", "us-east", "L4-24GB", [price("L4-24GB", "0.40")], { count: 1, lastSeenMs: 9_900, simulated: true }),
  source("a6", "eu-central", "A100-80GB", [price("A100-80GB", "1.80")], { count: 2, unhealthy: 1 }),
];

const key = (o: { region: string; gpuModel: string }) => `${o.region}/${o.gpuModel}`;

describe("orderBook aggregation", () => {
  it("aggregates agents by (region, model) with counts, min and lower-median price, and the freshest advert age", () => {
    const [h100] = orderBook(FLEET, { gpuModel: "H100-80GB" }, {}, NOW);
    expect(h100).toMatchObject({
      region: "eu-west",
      gpuModel: "H100-80GB",
      agents: 3,
      totalGpus: 14,
      freeGpus: 10,
      minPricePerGpuHour: usd("2.49"),
      // three agents at 2.49, 2.99, 3.50: the middle one
      medianPricePerGpuHour: usd("2.99"),
      freshestAdvertAgeMs: 500,
      interruptible: false,
      simulated: false,
      agentIds: ["a1", "a2", "a3"],
    });
  });

  it("counts only healthy GPUs as capacity", () => {
    const [a100] = orderBook(FLEET, { gpuModel: "A100-80GB" }, {}, NOW);
    expect(a100).toMatchObject({ totalGpus: 1, freeGpus: 1 });
  });

  it("marks a group simulated when any of its capacity is simulated", () => {
    const [l4] = orderBook(FLEET, { gpuModel: "L4" }, {}, NOW);
    expect(l4?.simulated).toBe(true);
  });

  it("leaves draining agents out", () => {
    const draining = { ...FLEET[0]!, draining: true };
    const [h100] = orderBook([draining, FLEET[1]!], { gpuModel: "H100-80GB" }, {}, NOW);
    expect(h100?.agentIds).toEqual(["a2"]);
  });

  it("never reports a negative advert age when an agent's clock runs ahead", () => {
    const ahead = source("z", "eu-west", "L4-24GB", [price("L4-24GB", "0.50")], { lastSeenMs: NOW + 5_000 });
    expect(orderBook([ahead], {}, {}, NOW)[0]?.freshestAdvertAgeMs).toBe(0);
  });
});

describe("orderBook filters", () => {
  const cases: { name: string; filter: OrderBookFilter; expected: string[] }[] = [
    {
      name: "no filter lists every priced group",
      filter: {},
      expected: ["us-east/L4-24GB", "us-west/A100-40GB", "eu-central/A100-80GB", "eu-west/H100-80GB"],
    },
    { name: "exact model, case ignored", filter: { gpuModel: "h100-80gb" }, expected: ["eu-west/H100-80GB"] },
    {
      name: "bare family matches every size",
      filter: { gpuModel: "A100" },
      expected: ["us-west/A100-40GB", "eu-central/A100-80GB"],
    },
    { name: "min VRAM", filter: { minVramMib: 80_000 }, expected: ["eu-central/A100-80GB", "eu-west/H100-80GB"] },
    {
      name: "region glob prefix",
      filter: { regionGlob: "eu-*" },
      expected: ["eu-central/A100-80GB", "eu-west/H100-80GB"],
    },
    {
      name: "region glob suffix",
      filter: { regionGlob: "*-west" },
      expected: ["us-west/A100-40GB", "eu-west/H100-80GB"],
    },
    { name: "region glob single char", filter: { regionGlob: "us-?ast" }, expected: ["us-east/L4-24GB"] },
    {
      name: "max price drops dearer agents",
      filter: { maxPricePerGpuHour: usd("1.10") },
      expected: ["us-east/L4-24GB", "us-west/A100-40GB"],
    },
    {
      name: "interruptible lists only interruptible capacity",
      filter: { interruptible: true },
      expected: ["us-west/A100-40GB", "eu-west/H100-80GB"],
    },
    {
      name: "stale adverts are left out",
      filter: { maxAdvertAgeMs: 2_500 },
      expected: ["us-east/L4-24GB", "eu-west/H100-80GB"],
    },
  ];
  it.each(cases)("$name", ({ filter, expected }) => {
    expect(orderBook(FLEET, filter, {}, NOW).map(key)).toEqual(expected);
  });

  it("prices interruptible groups at the interruptible price", () => {
    const [h100] = orderBook(FLEET, { interruptible: true, gpuModel: "H100-80GB" }, {}, NOW);
    expect(h100).toMatchObject({
      agents: 2,
      minPricePerGpuHour: usd("1.20"),
      medianPricePerGpuHour: usd("1.20"),
      interruptible: true,
    });
  });

  it("applies max price per agent, so the group's median moves with it", () => {
    const [h100] = orderBook(FLEET, { gpuModel: "H100-80GB", maxPricePerGpuHour: usd("3.00") }, {}, NOW);
    expect(h100).toMatchObject({ agents: 2, totalGpus: 12, medianPricePerGpuHour: usd("2.49") });
  });
});

describe("orderBook sort and limit", () => {
  const cases: { sort: OrderBookSort; expected: string[] }[] = [
    {
      sort: { by: "price" },
      expected: ["us-east/L4-24GB", "us-west/A100-40GB", "eu-central/A100-80GB", "eu-west/H100-80GB"],
    },
    {
      sort: { by: "-price" },
      expected: ["eu-west/H100-80GB", "eu-central/A100-80GB", "us-west/A100-40GB", "us-east/L4-24GB"],
    },
    {
      sort: { by: "free" },
      expected: ["eu-west/H100-80GB", "us-west/A100-40GB", "us-east/L4-24GB", "eu-central/A100-80GB"],
    },
    {
      sort: { by: "region" },
      expected: ["eu-central/A100-80GB", "eu-west/H100-80GB", "us-east/L4-24GB", "us-west/A100-40GB"],
    },
    {
      sort: { by: "-region" },
      expected: ["us-west/A100-40GB", "us-east/L4-24GB", "eu-west/H100-80GB", "eu-central/A100-80GB"],
    },
    {
      sort: { by: "model" },
      expected: ["us-west/A100-40GB", "eu-central/A100-80GB", "eu-west/H100-80GB", "us-east/L4-24GB"],
    },
    {
      sort: { by: "vram" },
      expected: ["eu-central/A100-80GB", "eu-west/H100-80GB", "us-west/A100-40GB", "us-east/L4-24GB"],
    },
    {
      sort: { by: "age" },
      expected: ["us-east/L4-24GB", "eu-west/H100-80GB", "us-west/A100-40GB", "eu-central/A100-80GB"],
    },
    { sort: { by: "price", limit: 2 }, expected: ["us-east/L4-24GB", "us-west/A100-40GB"] },
  ];
  it.each(cases)("sorts by $sort.by (limit $sort.limit)", ({ sort, expected }) => {
    expect(orderBook(FLEET, {}, sort, NOW).map(key)).toEqual(expected);
  });

  it("rejects an unknown sort key naming the field and the valid keys", () => {
    expect(() => orderBook(FLEET, {}, { by: "cheapest" }, NOW)).toThrow(InvalidMarketQueryError);
    expect(() => orderBook(FLEET, {}, { by: "cheapest" }, NOW)).toThrow(
      /sort_by: unknown sort key "cheapest"; use one of price/,
    );
  });

  it("rejects negative numbers in the filter", () => {
    expect(() => orderBook(FLEET, { minVramMib: -1 }, {}, NOW)).toThrow(/min_vram_mib/);
  });
});

describe("region globs", () => {
  it.each([
    ["eu-*", "eu-west", true],
    ["eu-*", "us-east", false],
    ["*-west", "us-west", true],
    ["eu.west", "eu-west", false],
    ["EU-*", "eu-north", true],
    ["us-(east)", "us-(east)", true],
  ])("%s matches %s: %s", (glob, region, expected) => {
    expect(globToRegExp(glob).test(region)).toBe(expected);
  });
});

describe("toOfferSource", () => {
  it("marks GPUs held by allocations as not free", () => {
    const adapted = toOfferSource(
      {
        id: "a9",
        region: "eu-west",
        gpus: [0, 1, 2].map((index) => ({ index, model: "L4-24GB", vramMib: 24_576, healthy: true })),
        prices: [price("L4-24GB", "0.40")],
        lastSeenMs: 5,
        simulated: false,
        draining: false,
      },
      [1],
    );
    expect(adapted.gpus.map((g) => g.free)).toEqual([true, false, true]);
    expect(adapted.agentId).toBe("a9");
  });
});
