import type { TypedKv } from "@capa/bus";
import type { Advert } from "@capa/domain";
import { describe, expect, it } from "vitest";
import type { ClusterStateApi } from "../planner/engine.js";
import type { AgentRecord } from "../store/records.js";
import { AgentRegistry } from "./registry.js";

function advert(agentId: string, uuids: string[], bootId = "b1"): Advert {
  return {
    agentId,
    region: "eu-west",
    zone: "eu-west-a",
    hostname: agentId,
    gpus: uuids.map((uuid, index) => ({
      index,
      uuid,
      model: "H100-80GB",
      vramMib: 81920,
      health: "ok" as const,
      migEnabled: false,
      utilizationPct: 0,
      memoryUsedMib: 0,
      temperatureC: 0,
      driverVersion: "",
    })),
    cpuCores: 1,
    memoryMib: 1,
    labels: {},
    fabricDomain: "",
    prices: [],
    simulated: true,
    sequence: 1,
    sentAtMs: 0,
    ttlSeconds: 30,
    version: "t",
    bootId,
    provider: "p",
    residency: "eu",
    reliability: 1,
  };
}

function registry(clock: { now: number }): AgentRegistry {
  const cluster = {
    upsertAgent: () => {},
    touchAgent: () => false,
    removeAgent: () => {},
  } as unknown as ClusterStateApi;
  return new AgentRegistry({} as TypedKv<AgentRecord>, cluster, () => clock.now, undefined);
}

describe("AgentRegistry: GPU UUID index and signs of life", () => {
  it("indexes an agent's UUIDs, moves them with its adverts and releases them when it is lost", () => {
    const clock = { now: 1_000 };
    const r = registry(clock);
    r.onAdvert(advert("a1", ["GPU-1", "GPU-2"]));
    expect([r.uuidHolder("GPU-1"), r.uuidHolder("GPU-2")]).toEqual(["a1", "a1"]);
    r.onAdvert({ ...advert("a1", ["GPU-2", "GPU-3"]), sequence: 2 });
    expect([r.uuidHolder("GPU-1"), r.uuidHolder("GPU-3")]).toEqual([undefined, "a1"]);
    r.markLost("a1");
    expect(r.uuidHolder("GPU-2")).toBeUndefined();
    // A new agent on the same machine may now take them; the lost one coming back takes them again.
    r.onAdvert(advert("a2", ["GPU-2"]));
    expect(r.uuidHolder("GPU-2")).toBe("a2");
  });

  it("a report is a sign of life for the billing cut, but never revives a lost agent", () => {
    const clock = { now: 1_000 };
    const r = registry(clock);
    r.onAdvert(advert("a1", []));
    clock.now = 5_000;
    r.heard("a1");
    expect(r.get("a1")!.lastSeenMs).toBe(5_000);
    clock.now = 4_000; // an older clock reading never moves it back
    r.heard("a1");
    expect(r.get("a1")!.lastSeenMs).toBe(5_000);
    r.markLost("a1");
    clock.now = 9_000;
    r.heard("a1");
    expect(r.get("a1")!.lastSeenMs).toBe(5_000);
    expect(r.get("a1")!.record.lost).toBe(true);
    r.heard("unknown"); // no entry, nothing to do
    expect(r.get("unknown")).toBeUndefined();
  });
});
