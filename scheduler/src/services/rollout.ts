/**
 * Pure: one round of a rollout. A new revision goes region by region (the spec's region order): in the region
 * being rolled, new replicas are added beside the old ones (ceil(count × step%), at least 1) and get that share of
 * its traffic (endpoint weights); each step is held for `pauseMs` with every new replica ready and the new
 * revision's error rate (gateway-measured, since the step began) at most `maxErrorRate`; then the next step, and at
 * 100 % the region's old replicas retire and the next region starts at the canary step. Too many errors (once
 * `minRequests` were seen) or new replicas not ready within `readyTimeoutMs` roll the whole service back.
 */

export interface RolloutPolicy {
  /** 0 = no canary: a new revision replaces the old one everywhere at once (surge). */
  canaryPercent: number;
  /** Further traffic steps in percent after the canary, increasing, the last one 100 (default [100]). */
  steps: number[];
  pauseMs: number;
  maxErrorRate: number;
  minRequests: number;
  readyTimeoutMs: number;
}

export type RolloutPhase = "progressing" | "promoted" | "rolled-back";

export interface RolloutState {
  revision: number;
  fromRevision: number;
  regionIndex: number;
  stepIndex: number;
  stepStartedAtMs: number;
  /** Since when every new replica of the step has been ready (0 = not all ready now); the pause counts from it. */
  readySinceMs: number;
  phase: RolloutPhase;
  reason: string;
  /** Per new-revision task: the gateway counters when the step began. */
  baseline: Record<string, { requests: number; errors: number }>;
  startedAtMs: number;
  updatedAtMs: number;
}

/** The percent ladder of a policy: [canary, ...steps]. */
export function ladder(p: RolloutPolicy): number[] {
  const steps = p.steps.length > 0 ? p.steps : [100];
  return [p.canaryPercent, ...steps.filter((s) => s > p.canaryPercent)];
}

export interface StepObservation {
  /** New-revision replicas wanted in the region at this step, and how many are ready. */
  wanted: number;
  ready: number;
  /** New-revision requests and errors since the step began. */
  requests: number;
  errors: number;
}

export type StepVerdict = { kind: "hold" } | { kind: "advance"; reason: string } | { kind: "rollback"; reason: string };

export function judgeStep(
  p: RolloutPolicy,
  s: RolloutState,
  region: string,
  o: StepObservation,
  nowMs: number,
  forced: "promote" | "abort" | undefined,
): StepVerdict {
  const pct = ladder(p)[s.stepIndex] ?? 100;
  if (forced === "abort") return { kind: "rollback", reason: `aborted by request at ${region} ${pct}%` };
  const rate = o.requests > 0 ? o.errors / o.requests : 0;
  if (o.requests >= p.minRequests && rate > p.maxErrorRate)
    return {
      kind: "rollback",
      reason: `error rate ${(rate * 100).toFixed(1)}% (${o.errors}/${o.requests}) over ${(p.maxErrorRate * 100).toFixed(1)}% in ${region} at ${pct}%`,
    };
  if (o.ready < o.wanted) {
    const waited = nowMs - s.stepStartedAtMs;
    if (waited > p.readyTimeoutMs)
      return {
        kind: "rollback",
        reason: `${o.wanted - o.ready} new replica(s) not ready after ${Math.round(waited / 1000)}s in ${region} at ${pct}%`,
      };
    return { kind: "hold" };
  }
  if (forced === "promote") return { kind: "advance", reason: `promoted by request at ${region} ${pct}%` };
  // The pause counts from when the step's replicas were all ready, and wants evidence: min_requests answered by
  // the new revision, or (no traffic at all) three pauses of readiness.
  const held = s.readySinceMs > 0 ? nowMs - s.readySinceMs : 0;
  if (held < p.pauseMs || (o.requests < p.minRequests && held < 3 * p.pauseMs)) return { kind: "hold" };
  return {
    kind: "advance",
    reason: `${region} ${pct}%: ${o.ready} ready, ${o.errors}/${o.requests} errors over ${Math.round(held / 1000)}s`,
  };
}

/** New-revision replicas for a region at a step, given the old revision's count there. */
export function canaryCount(oldCount: number, percent: number): number {
  if (percent >= 100) return Math.max(1, oldCount);
  return Math.max(1, Math.ceil((oldCount * percent) / 100));
}
