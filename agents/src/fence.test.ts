import { describe, expect, it } from "vitest";
import { ContactClock, fenceAfterMs } from "./fence.js";

const TIMES = { partitionGraceMs: 120_000, heartbeatIntervalMs: 2_000 };

describe("self-fencing: an agent out of contact stops its tasks before the scheduler re-places them", () => {
  it.each([
    ["the default kill grace (10 s)", 10_000, 106_000],
    ["no kill grace", 0, 116_000],
    ["a kill grace longer than the partition grace: after 3 heartbeats", 300_000, 6_000],
  ])("%s", (_name, killGraceMs, after) => {
    expect(fenceAfterMs(TIMES, killGraceMs)).toBe(after);
  });

  it("fences each task at its own time after the last contact, and none once contact returns", () => {
    let now = 1_000;
    const clock = new ContactClock(() => now);
    const tasks = new Map([
      ["short-grace", 0],
      ["long-grace", 30_000],
    ]);
    now += 80_000;
    expect(clock.due(tasks, TIMES)).toEqual([]);
    now += 6_001; // 86 001 ms out of contact: past 120 000 − 30 000 − 4 000
    expect(clock.due(tasks, TIMES)).toEqual(["long-grace"]);
    now += 30_000; // 116 001 ms
    expect(clock.due(tasks, TIMES)).toEqual(["short-grace", "long-grace"]);
    clock.contact();
    expect(clock.due(tasks, TIMES)).toEqual([]);
    expect(clock.silentMs()).toBe(0);
  });

  it("counts from the last contact, not from a clock that stepped back", () => {
    let now = 50_000;
    const clock = new ContactClock(() => now);
    now = 40_000;
    clock.contact(); // a step back does not move the last contact back
    now = 50_000 + 106_001;
    expect(clock.due(new Map([["t", 10_000]]), TIMES)).toEqual(["t"]);
  });
});
