import { describe, expect, it } from "vitest";
import { LoadWindow, p95 } from "./stats.js";

describe("p95", () => {
  it.each([
    [[], 0],
    [[7], 7],
    [Array.from({ length: 100 }, (_, i) => i + 1), 95],
    [Array.from({ length: 20 }, (_, i) => 20 - i), 19],
  ])("of %j is %d", (samples, want) => expect(p95(samples)).toBe(want));
});

describe("LoadWindow", () => {
  it("counts per replica and starts afresh at each roll", () => {
    let now = 0;
    const w = new LoadWindow(() => now);
    for (let i = 0; i < 3; i++) w.arrived();
    w.record("a", 10, false);
    w.record("a", 30, true);
    w.record("b", 5, false);
    now = 1_000;
    expect(w.roll()).toEqual({
      windowMs: 1_000,
      requests: 3,
      replicas: [
        { taskId: "a", requests: 2, errors: 1, p95LatencyMs: 30 },
        { taskId: "b", requests: 1, errors: 0, p95LatencyMs: 5 },
      ],
    });
    now = 1_500;
    expect(w.roll()).toEqual({ windowMs: 500, requests: 0, replicas: [] });
  });

  it("keeps at most maxSamples latencies per replica, still counting every request", () => {
    const w = new LoadWindow(
      () => 0,
      () => 0.999,
      10,
    );
    for (let i = 0; i < 1_000; i++) w.record("a", i, false);
    const r = w.roll().replicas[0]!;
    expect(r.requests).toBe(1_000);
    expect(r.p95LatencyMs).toBeLessThan(10);
  });
});
