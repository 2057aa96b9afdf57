import { describe, expect, it } from "vitest";
import { decideScale, type Recommendation, trimHistory } from "./autoscaler.js";
import type { ScalingTarget } from "./model.js";

const target: ScalingTarget = {
  requestsPerSecondPerReplica: 10,
  p95LatencyMs: 0,
  scaleUpWindowMs: 2_000,
  scaleDownWindowMs: 5_000,
};

/** Runs the autoscaler every 500 ms over a load trace, keeping its history and count as the controller does. */
function run(loads: number[], start = 1, min = 1, max = 5) {
  let current = start;
  let history: Recommendation[] = [];
  const counts: number[] = [];
  loads.forEach((rps, i) => {
    const nowMs = i * 500;
    const d = decideScale({
      current,
      min,
      max,
      target,
      load: { requestsPerSecond: rps, p95LatencyMs: 0 },
      history,
      nowMs,
    });
    history.push({ atMs: nowMs, replicas: d.recommendation });
    history = trimHistory(history, target, nowMs);
    current = d.replicas;
    counts.push(current);
  });
  return counts;
}

describe("decideScale", () => {
  it("scales up only after the recommendation held for the scale-up window", () => {
    const counts = run(Array(8).fill(35));
    expect(counts.slice(0, 4)).toEqual([1, 1, 1, 1]);
    expect(counts[4]).toBe(4);
    expect(counts.at(-1)).toBe(4);
  });

  it("does not flap on a spike shorter than the window", () => {
    expect(run([5, 5, 5, 5, 40, 5, 40, 5, 5, 5])).toEqual(Array(10).fill(1));
  });

  it("scales down to the highest recommendation of the scale-down window", () => {
    const counts = run([...Array(6).fill(40), ...Array(14).fill(12)], 4);
    // The last high recommendation is at 2.5 s; the count drops 5 s (the window) later, at tick 15.
    expect(counts.slice(0, 15)).toEqual(Array(15).fill(4));
    expect(counts.slice(15)).toEqual(Array(5).fill(2));
  });

  it("keeps the count within ±10 % of the target", () => {
    expect(run(Array(10).fill(21), 2)).toEqual(Array(10).fill(2));
  });

  it("restores the minimum at once and clamps to the maximum", () => {
    const d = decideScale({ current: 0, min: 1, max: 3, target, load: undefined, history: [], nowMs: 0 });
    expect(d.replicas).toBe(1);
    expect(run(Array(10).fill(500), 1, 1, 3).at(-1)).toBe(3);
  });

  it("holds without a load report or a target", () => {
    expect(decideScale({ current: 2, min: 1, max: 3, target, load: undefined, history: [], nowMs: 0 }).replicas).toBe(
      2,
    );
    const none = { ...target, requestsPerSecondPerReplica: 0 };
    const load = { requestsPerSecond: 1000, p95LatencyMs: 0 };
    expect(decideScale({ current: 2, min: 1, max: 3, target: none, load, history: [], nowMs: 0 }).replicas).toBe(2);
  });

  it("adds a replica while p95 is over a latency target", () => {
    const latency = { ...target, requestsPerSecondPerReplica: 0, p95LatencyMs: 100 };
    const history = [{ atMs: -3_000, replicas: 3 }];
    const load = { requestsPerSecond: 0, p95LatencyMs: 250 };
    expect(decideScale({ current: 2, min: 1, max: 5, target: latency, load, history, nowMs: 0 }).replicas).toBe(3);
  });
});
