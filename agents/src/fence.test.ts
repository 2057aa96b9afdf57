import { describe, expect, it } from "vitest";
import { ContactClock, Fence, type FenceCause, type FenceTimes, fenceAfterMs } from "./fence.js";

/** The product's defaults: 2 min grace, 2 s heartbeats, 6 s advert TTL; with --fence-on-disconnect. */
const TIMES: FenceTimes = {
  partitionGraceMs: 120_000,
  heartbeatIntervalMs: 2_000,
  agentTimeoutMs: 6_000,
  busClock: true,
};
/** A long advert TTL, where the kill grace fits inside the agent timeout. */
const LONG_TTL = { ...TIMES, agentTimeoutMs: 60_000 };

describe("self-fencing: an agent out of contact stops its tasks before the scheduler re-places them", () => {
  it.each<[string, FenceTimes, FenceCause, number, number]>([
    // State clock (a cut region, held by the scheduler for the partition grace).
    ["state: the default kill grace (10 s)", TIMES, "state", 10_000, 106_000],
    ["state: no kill grace", TIMES, "state", 0, 116_000],
    ["state: a kill grace longer than the partition grace: after 3 heartbeats", TIMES, "state", 300_000, 6_000],
    // Bus clock (no NATS round trip: the scheduler may lose this agent alone, at its timeout).
    ["bus, default TTL: the timeout leaves no room for any kill grace: 3 heartbeats", TIMES, "bus", 10_000, 6_000],
    ["bus, default TTL, no kill grace: still 3 heartbeats (a reconnect)", TIMES, "bus", 0, 6_000],
    ["bus, 60 s TTL: the timeout less the kill grace and 2 heartbeats", LONG_TTL, "bus", 10_000, 46_000],
    ["bus, 60 s TTL, a kill grace past it: half the timeout", LONG_TTL, "bus", 120_000, 30_000],
    [
      "bus, 200 ms heartbeats and a 3 s TTL (the tests'): half the timeout, not 600 ms of a stalled loop",
      { partitionGraceMs: 8_000, heartbeatIntervalMs: 200, agentTimeoutMs: 3_000 },
      "bus",
      1_000,
      1_600,
    ],
  ])("%s", (_name, times, cause, killGraceMs, after) => {
    expect(fenceAfterMs(times, killGraceMs, cause)).toBe(after);
  });

  it("wherever the scheduler re-places, the task's kill is over first when its kill grace fits", () => {
    for (const times of [TIMES, LONG_TTL]) {
      for (const killGraceMs of [0, 1_000, 10_000, 30_000]) {
        // A cut region is re-placed after the grace; a silent lone agent after its timeout.
        const state = fenceAfterMs(times, killGraceMs, "state");
        if (state === times.partitionGraceMs - killGraceMs - 2 * times.heartbeatIntervalMs)
          expect(state + killGraceMs).toBeLessThan(times.partitionGraceMs);
        const bus = fenceAfterMs(times, killGraceMs, "bus");
        if (bus === times.agentTimeoutMs - killGraceMs - 2 * times.heartbeatIntervalMs)
          expect(bus + killGraceMs).toBeLessThan(times.agentTimeoutMs);
        // Never later than the timeout itself, whatever the kill grace.
        expect(bus).toBeLessThanOrEqual(times.agentTimeoutMs);
        expect(bus).toBeLessThanOrEqual(state);
      }
    }
  });

  it("fences each task at its own time after the last state contact, and none once contact returns", () => {
    let now = 1_000;
    const fence = new Fence(() => now);
    const tasks = new Map([
      ["short-grace", 0],
      ["long-grace", 30_000],
    ]);
    const stillConnected = () => fence.bus.contact();
    now += 80_000;
    stillConnected();
    expect(fence.due(tasks, TIMES)).toEqual([]);
    now += 6_001; // 86 001 ms out of contact: past 120 000 − 30 000 − 4 000
    stillConnected();
    expect(fence.due(tasks, TIMES)).toEqual([{ taskId: "long-grace", cause: "state", silentMs: 86_001 }]);
    now += 30_000; // 116 001 ms
    stillConnected();
    expect(fence.due(tasks, TIMES).map((d) => [d.taskId, d.cause])).toEqual([
      ["short-grace", "state"],
      ["long-grace", "state"],
    ]);
    fence.state.contact();
    expect(fence.due(tasks, TIMES)).toEqual([]);
    expect(fence.state.silentMs()).toBe(0);
  });

  it("disconnected from NATS, fences at the agent timeout's clock, not the grace's", () => {
    let now = 0;
    const fence = new Fence(() => now);
    const tasks = new Map([["t", 10_000]]);
    now = 6_000;
    expect(fence.due(tasks, TIMES)).toEqual([]);
    now = 6_001;
    expect(fence.due(tasks, TIMES)).toEqual([{ taskId: "t", cause: "bus", silentMs: 6_001 }]);
    // A round trip again (reconnected) but the state still unreachable: the grace's clock, from the last read.
    fence.bus.contact();
    expect(fence.due(tasks, TIMES)).toEqual([]);
    now = 106_001;
    fence.bus.contact();
    expect(fence.due(tasks, TIMES)).toEqual([{ taskId: "t", cause: "state", silentMs: 106_001 }]);
  });

  it("without --fence-on-disconnect (the default), no NATS at all fences only at the grace's clock", () => {
    let now = 0;
    const fence = new Fence(() => now);
    const tasks = new Map([["t", 10_000]]);
    const byDefault: FenceTimes = { ...TIMES, busClock: undefined };
    now = 106_000;
    expect(fence.due(tasks, byDefault)).toEqual([]);
    now = 106_001;
    expect(fence.due(tasks, byDefault)).toEqual([{ taskId: "t", cause: "state", silentMs: 106_001 }]);
  });

  it("dates a round trip by when its ping was sent, never in the future", () => {
    let now = 10_000;
    const clock = new ContactClock(() => now);
    now = 20_000;
    clock.contact(15_000); // the pong for a ping sent at 15 000 arrives at 20 000
    expect(clock.silentMs()).toBe(5_000);
    clock.contact(25_000);
    expect(clock.silentMs()).toBe(0);
  });

  it("counts from the last contact, not from a clock that stepped back", () => {
    let now = 50_000;
    const fence = new Fence(() => now);
    now = 40_000;
    fence.state.contact(); // a step back does not move the last contact back
    fence.bus.contact();
    now = 50_000 + 106_001;
    fence.bus.contact();
    expect(fence.due(new Map([["t", 10_000]]), TIMES).map((d) => d.taskId)).toEqual(["t"]);
  });
});
