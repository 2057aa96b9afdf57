/**
 * Pure: how many replicas a region should have, from its measured load, with stabilisation windows so that a
 * noisy signal does not flap (the Kubernetes HPA's rule): a higher count is taken only once every recommendation
 * of the scale-up window asks for at least that many (the window's minimum), and replicas are removed only
 * down to the highest recommendation of the scale-down window. The minimum is restored at once.
 */
import type { ScalingTarget } from "./model.js";

export interface RegionLoad {
  requestsPerSecond: number;
  p95LatencyMs: number;
}

export interface Recommendation {
  atMs: number;
  replicas: number;
}

export interface ScaleInput {
  current: number;
  min: number;
  max: number;
  target: ScalingTarget;
  /** Undefined: no fresh report (no gateway, or it stopped): the count stays. */
  load: RegionLoad | undefined;
  /** This region's earlier recommendations (oldest first); the caller keeps them. */
  history: Recommendation[];
  nowMs: number;
}

export interface ScaleDecision {
  replicas: number;
  /** The raw recommendation of this round (append it to the history). */
  recommendation: number;
  reason: string;
}

/** Within ±10 % of the target the count stays (the HPA's tolerance). */
const TOLERANCE = 0.1;

export function recommend(current: number, min: number, max: number, target: ScalingTarget, load: RegionLoad) {
  let want = current;
  const why: string[] = [];
  if (target.requestsPerSecondPerReplica > 0) {
    const ratio = load.requestsPerSecond / (Math.max(current, 1) * target.requestsPerSecondPerReplica);
    const byRate =
      Math.abs(ratio - 1) <= TOLERANCE && current > 0
        ? current
        : Math.ceil(load.requestsPerSecond / target.requestsPerSecondPerReplica - 1e-9);
    want = byRate;
    why.push(`${load.requestsPerSecond.toFixed(1)} req/s at ${target.requestsPerSecondPerReplica} per replica`);
  }
  if (target.p95LatencyMs > 0) {
    // Latency has no linear model: one more replica while over the target, one fewer well under it.
    const byLatency =
      load.p95LatencyMs > target.p95LatencyMs * (1 + TOLERANCE)
        ? current + 1
        : load.p95LatencyMs < target.p95LatencyMs / 2 && target.requestsPerSecondPerReplica === 0
          ? current - 1
          : current;
    want = target.requestsPerSecondPerReplica > 0 ? Math.max(want, byLatency) : byLatency;
    why.push(`p95 ${load.p95LatencyMs} ms against ${target.p95LatencyMs} ms`);
  }
  return { replicas: Math.min(max, Math.max(min, want)), why: why.join(", ") };
}

export function decideScale(input: ScaleInput): ScaleDecision {
  const { current, min, max, target, load, history, nowMs } = input;
  if (current < min) return { replicas: min, recommendation: min, reason: `below the minimum of ${min}` };
  if (current > max) return { replicas: max, recommendation: max, reason: `above the maximum of ${max}` };
  const autoscaled = target.requestsPerSecondPerReplica > 0 || target.p95LatencyMs > 0;
  if (!autoscaled || !load) return { replicas: current, recommendation: current, reason: "" };
  const raw = recommend(current, min, max, target, load);
  const within = (windowMs: number) => [
    ...history.filter((h) => h.atMs > nowMs - windowMs).map((h) => h.replicas),
    raw.replicas,
  ];
  // A window counts only once the history reaches back over all of it (a fresh controller waits one window).
  const covers = (windowMs: number) => history.length > 0 && history[0]!.atMs <= nowMs - windowMs;
  if (raw.replicas > current && covers(target.scaleUpWindowMs)) {
    const stable = Math.min(...within(target.scaleUpWindowMs));
    if (stable > current)
      return {
        replicas: stable,
        recommendation: raw.replicas,
        reason: `${raw.why}: held for ${target.scaleUpWindowMs / 1000}s`,
      };
  }
  if (raw.replicas < current && covers(target.scaleDownWindowMs)) {
    const stable = Math.max(...within(target.scaleDownWindowMs));
    if (stable < current)
      return {
        replicas: stable,
        recommendation: raw.replicas,
        reason: `${raw.why}: held for ${target.scaleDownWindowMs / 1000}s`,
      };
  }
  return { replicas: current, recommendation: raw.replicas, reason: "" };
}

/** Drops recommendations older than the longer window (bounded history). */
export function trimHistory(history: Recommendation[], target: ScalingTarget, nowMs: number): Recommendation[] {
  const keep = Math.max(target.scaleUpWindowMs, target.scaleDownWindowMs) + 1_000;
  const cut = history.findIndex((h) => h.atMs > nowMs - keep);
  // Keep one entry older than the window so `covers` can tell the window is full.
  return cut <= 0 ? history : history.slice(cut - 1);
}
