import type { Advert } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { ADVERT_CHECKS, type AdvertCheckContext, advertRefusal } from "./index.js";

const gpu = (index: number, uuid = `GPU-a1-${index}`) => ({
  index,
  uuid,
  model: "H100-80GB",
  vramMib: 81920,
  health: "ok" as const,
  migEnabled: false,
  utilizationPct: 0,
  memoryUsedMib: 0,
  temperatureC: 40,
  driverVersion: "550",
});

function advert(overrides: Partial<Advert> = {}): Advert {
  return {
    agentId: "a1",
    region: "eu-west",
    zone: "eu-west-a",
    hostname: "h",
    gpus: [gpu(0), gpu(1)],
    cpuCores: 8,
    memoryMib: 1000,
    labels: {},
    fabricDomain: "",
    prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
    simulated: true,
    sequence: 1,
    sentAtMs: 0,
    ttlSeconds: 30,
    version: "t",
    bootId: "boot-1",
    provider: "p",
    residency: "eu",
    reliability: 1,
    ...overrides,
  };
}

function ctx(a: Advert, extra: Partial<AdvertCheckContext> = {}): AdvertCheckContext {
  return {
    advert: a,
    subject: { region: "eu-west", agentId: "a1" },
    known: (id) => (id === "victim" ? { bootId: "victim-boot", lost: false } : undefined),
    uuidHolder: (uuid) => (uuid === "GPU-victim-0" ? "victim" : undefined),
    maxPricePerGpuHour: 100_000_000,
    ...extra,
  };
}

const price = (onDemandPerHour: number, interruptiblePerHour = 0) => [
  { gpuModel: "H100-80GB", onDemandPerHour, interruptiblePerHour },
];

describe("advert checks", () => {
  it.each<[string, Advert, Partial<AdvertCheckContext>, string | undefined]>([
    ["a consistent advert", advert(), {}, undefined],
    [
      "another agent's id with a new boot id",
      advert({ agentId: "victim", bootId: "new" }),
      {},
      "boot-id-for-unowned-agent",
    ],
    ["another (unknown) agent's id", advert({ agentId: "other" }), {}, "agent-id-differs-from-subject"],
    ["another region than its subject", advert({ region: "us-east" }), {}, "region-differs-from-subject"],
    ["more GPUs than indices", advert({ gpus: [gpu(0), gpu(0, "GPU-x")] }), {}, "more-gpus-than-indices"],
    ["an index outside 0..n-1", advert({ gpus: [gpu(0), gpu(7)] }), {}, "more-gpus-than-indices"],
    ["one UUID twice", advert({ gpus: [gpu(0, "GPU-same"), gpu(1, "GPU-same")] }), {}, "duplicate-gpu-uuid"],
    ["a UUID another agent holds", advert({ gpus: [gpu(0, "GPU-victim-0")] }), {}, "gpu-uuid-held-by-another-agent"],
    ["its own UUIDs again", advert(), { uuidHolder: () => "a1" }, undefined],
    ["a negative price", advert({ prices: price(-1) }), {}, "invalid-price"],
    ["a fractional price", advert({ prices: price(1.5) }), {}, "invalid-price"],
    ["a negative spot price", advert({ prices: price(1, -5) }), {}, "invalid-price"],
    ["a runaway price", advert({ prices: price(1_000_000_000_000) }), {}, "price-above-ceiling"],
    ["a runaway spot price", advert({ prices: price(1, 100_000_001) }), {}, "price-above-ceiling"],
    ["exactly the ceiling", advert({ prices: price(100_000_000) }), {}, undefined],
    [
      "a lower configured ceiling",
      advert({ prices: price(3_000_000) }),
      { maxPricePerGpuHour: 2_000_000 },
      "price-above-ceiling",
    ],
  ])("%s", (_name, a, extra, reason) => {
    const refusal = advertRefusal(ctx(a, extra));
    expect(refusal?.reason).toBe(reason);
    if (refusal) expect(refusal.detail.length).toBeGreaterThan(0);
  });

  it("every check has a distinct named reason", () => {
    const reasons = ADVERT_CHECKS.map((c) => c.reason);
    expect(new Set(reasons).size).toBe(reasons.length);
  });
});
