import type { CatalogEntry } from "@capa/catalog";
import { describe, expect, it } from "vitest";
import { planLocalAgents } from "./fleet.js";
import { providerPrices, regionPrices, simulatedAgentPricing } from "./prices.js";

function entry(provider: string, region: string, gpuModel: string, usd: number, spotUsd = 0): CatalogEntry {
  return {
    provider,
    cloudRegion: region,
    region,
    zone: region,
    instanceType: "x",
    gpuModel,
    gpusPerInstance: 1,
    onDemandPerGpuHour: Math.round(usd * 1_000_000),
    interruptiblePerGpuHour: Math.round(spotUsd * 1_000_000),
  };
}

const CATALOG: CatalogEntry[] = [
  entry("runpod", "eu-west", "H100-80GB", 2.39, 1.94),
  entry("gcp", "eu-west", "H100-80GB", 4.42, 2.5),
  entry("aws", "eu-west", "H100-80GB", 15.98),
  entry("gcp", "eu-west", "H100-80GB", 5.0),
  entry("lambda", "us-east", "H100-80GB", 2.49),
  entry("aws", "us-east", "A100-80GB", 1.79, 0.73),
  entry("runpod", "eu-west", "A100-80GB", 1.62, 1.19),
];

describe("catalog prices for agents", () => {
  it("ranks providers of a model in a region, cheapest first, each at its cheapest", () => {
    expect(providerPrices(CATALOG, "eu-west", "H100-80GB").map((p) => [p.provider, p.price.onDemandPerHour])).toEqual([
      ["runpod", 2_390_000],
      ["gcp", 4_420_000],
      ["aws", 15_980_000],
    ]);
  });

  it("gives the n-th agent of a region the n-th cheapest provider, and the last one beyond", () => {
    const first = simulatedAgentPricing(CATALOG, "eu-west", ["H100-80GB", "A100-80GB"], 0);
    expect(first.provider).toBe("runpod");
    expect(first.prices).toEqual([
      { gpuModel: "H100-80GB", onDemandPerHour: 2_390_000, interruptiblePerHour: 1_940_000 },
      { gpuModel: "A100-80GB", onDemandPerHour: 1_620_000, interruptiblePerHour: 1_190_000 },
    ]);
    const second = simulatedAgentPricing(CATALOG, "eu-west", ["H100-80GB", "A100-80GB"], 1);
    expect(second.provider).toBe("gcp");
    expect(second.prices[0]).toEqual({
      gpuModel: "H100-80GB",
      onDemandPerHour: 4_420_000,
      interruptiblePerHour: 2_500_000,
    });
    expect(second.prices[1]?.onDemandPerHour).toBe(1_620_000);
  });

  it("prices a model the region lacks at its cheapest anywhere, and reports models nobody prices", () => {
    const pricing = simulatedAgentPricing(CATALOG, "us-east", ["H100-80GB", "A100-80GB", "L4-24GB"], 0);
    expect(pricing.prices.map((p) => [p.gpuModel, p.onDemandPerHour])).toEqual([
      ["H100-80GB", 2_490_000],
      ["A100-80GB", 1_790_000],
    ]);
    expect(pricing.unpriced).toEqual(["L4-24GB"]);
    expect(simulatedAgentPricing(CATALOG, "ap-south", ["A100-80GB"], 0).prices[0]?.onDemandPerHour).toBe(1_620_000);
  });

  it("prices every model of a region for a real agent, or the cheapest anywhere for an unknown region", () => {
    expect(regionPrices(CATALOG, "us-east")).toEqual({
      from: "us-east",
      prices: [
        { gpuModel: "A100-80GB", onDemandPerHour: 1_790_000, interruptiblePerHour: 730_000 },
        { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 0 },
      ],
    });
    const local = regionPrices(CATALOG, "local");
    expect(local.from).toBe("all regions");
    expect(local.prices.map((p) => [p.gpuModel, p.onDemandPerHour])).toEqual([
      ["A100-80GB", 1_620_000],
      ["H100-80GB", 2_390_000],
    ]);
  });
});

describe("planLocalAgents", () => {
  it("plans agents per region with distinct ids, zones and work dirs", () => {
    const { agents, unpriced } = planLocalAgents(CATALOG, {
      regions: ["eu-west", "us-east"],
      agentsPerRegion: 2,
      gpus: "4xH100-80GB,2xA100-80GB",
      stateDir: "/tmp/s",
    });
    expect(unpriced).toEqual([]);
    expect(agents.map((a) => [a.agentId, a.region, a.zone, a.provider, a.workDir])).toEqual([
      ["sim-eu-west-1", "eu-west", "eu-west-a", "runpod", "/tmp/s/agents/sim-eu-west-1"],
      ["sim-eu-west-2", "eu-west", "eu-west-b", "gcp", "/tmp/s/agents/sim-eu-west-2"],
      ["sim-us-east-1", "us-east", "us-east-a", "lambda", "/tmp/s/agents/sim-us-east-1"],
      ["sim-us-east-2", "us-east", "us-east-b", "lambda", "/tmp/s/agents/sim-us-east-2"],
    ]);
    expect(agents.every((a) => a.gpus === "4xH100-80GB,2xA100-80GB" && a.prices.length === 2)).toBe(true);
  });

  it("rejects a GPU spec it cannot parse", () => {
    expect(() =>
      planLocalAgents(CATALOG, { regions: ["eu-west"], agentsPerRegion: 1, gpus: "lots", stateDir: "." }),
    ).toThrow();
  });
});
