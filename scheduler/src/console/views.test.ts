import { type Advert, defaultJobSpec, type Job } from "@capa/domain";
import type { LedgerEntry } from "@capa/market";
import { describe, expect, it } from "vitest";
import type { AgentInfo } from "../agents/fleet.js";
import { fleetCells, jobsView, moneySeries } from "./views.js";

function agent(id: string, region: string, status: string, free: number[], health: "ok" | "failed" = "ok"): AgentInfo {
  const gpus = [0, 1, 2, 3].map((index) => ({
    index,
    uuid: `${id}-${index}`,
    model: "H100-80GB",
    vramMib: 81_920,
    health: index === 3 ? health : ("ok" as const),
    migEnabled: false,
    utilizationPct: 0,
    memoryUsedMib: 0,
    temperatureC: 0,
    driverVersion: "",
  }));
  const price = id === "a" ? 2_000_000 : 3_000_000;
  const advert = {
    agentId: id,
    region,
    gpus,
    prices: [{ gpuModel: "H100-80GB", onDemandPerHour: price, interruptiblePerHour: id === "a" ? 900_000 : 0 }],
    provider: "p",
  } as unknown as Advert;
  return {
    record: { advert, draining: status === "draining", lost: status === "lost", updatedAtMs: 0 },
    status,
    lastSeenMs: 0,
    freeGpuIndices: free,
    taskIds: [],
    nowMs: 0,
  };
}

function job(id: string, state: Job["state"], createdAtMs: number, finishedAtMs = 0): Job {
  return {
    id,
    tenant: "acme",
    requestId: "",
    spec: defaultJobSpec({ name: id }),
    state,
    reason: state === "pending" ? "no agent has 1 free GPU" : "",
    tasks: [],
    createdAtMs,
    updatedAtMs: createdAtMs,
    finishedAtMs,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
  };
}

describe("console views", () => {
  it("groups the fleet by region and model: free and used on ready agents, the rest unavailable", () => {
    const cells = fleetCells([
      agent("a", "eu-west", "ready", [0, 1]),
      agent("b", "eu-west", "ready", [0, 1, 2], "failed"),
      agent("c", "eu-west", "draining", [0, 1, 2, 3]),
      agent("d", "us-east", "ready", [0, 1, 2, 3]),
    ]);
    expect(cells.map((c) => [c.region, c.agents, c.freeGpus, c.usedGpus, c.unavailableGpus])).toEqual([
      ["eu-west", 3, 5, 2, 5],
      ["us-east", 1, 4, 0, 0],
    ]);
    expect(cells[0]).toMatchObject({ minPriceMicros: 2_000_000, maxPriceMicros: 3_000_000, minSpotMicros: 900_000 });
  });

  it("orders the queue oldest first and recent jobs newest first", () => {
    const v = jobsView(
      [
        job("p2", "pending", 20),
        job("p1", "pending", 10),
        job("r1", "running", 5),
        job("s1", "succeeded", 1, 100),
        job("s2", "failed", 2, 200),
      ],
      30_000,
    );
    expect(v.queue.map((j) => j.id)).toEqual(["p1", "p2"]);
    expect(v.queue[0]).toMatchObject({ reason: "no agent has 1 free GPU", ageS: 30 });
    expect(v.running.map((j) => j.id)).toEqual(["r1"]);
    expect(v.recent.map((j) => j.id)).toEqual(["s2", "s1"]);
    expect(v.counts).toEqual({ pending: 2, running: 1, succeeded: 1, failed: 1 });
  });

  it("adds ledger entries up per group on shared bucket edges, from 0 before the first entry", () => {
    const e = (tenant: string, atMs: number, amount: number) => ({ tenant, atMs, amount }) as LedgerEntry;
    const series = moneySeries(
      [e("b", 1_000, 5), e("a", 2_000, 1), e("a", 9_000, 2)],
      (x) => x.tenant,
      10_000,
      10,
      10_000,
    );
    expect(series.map((s) => [s.name, s.totalMicros])).toEqual([
      ["a", 3],
      ["b", 5],
    ]);
    const [a, b] = series;
    expect(a!.points.map((p) => p.atMs)).toEqual(b!.points.map((p) => p.atMs));
    expect(a!.points[0]!.cumulativeMicros).toBe(0);
    expect(a!.points.at(-1)!.cumulativeMicros).toBe(3);
    expect(a!.points.map((p) => p.cumulativeMicros)).toEqual(
      [...a!.points.map((p) => p.cumulativeMicros)].sort((x, y) => x - y),
    );
  });
});
