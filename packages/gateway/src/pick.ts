/**
 * Pure: which replica gets the next request. Nearest first (the gateway's own region, then the others by
 * round-trip time from it), and among the nearest the least loaded: fewest requests in flight, then the lowest
 * recent latency, then the one picked longest ago (a round robin among equals). Replicas that just failed a
 * connection are skipped for a short penalty, so a dying replica stops getting traffic before the endpoint set
 * catches up.
 */

export interface Target {
  taskId: string;
  region: string;
  host: string;
  port: number;
  revision: number;
  /** Share of its region's traffic for its revision during a rollout (100 otherwise). */
  trafficPercent: number;
}

export interface TargetState {
  inFlight: number;
  /** Exponentially weighted latency of recent responses, ms (0 = none yet). */
  ewmaMs: number;
  lastPickedSeq: number;
  /** Not picked before this instant (ms) after a connection failure. */
  penaltyUntilMs: number;
}

export interface PickInput {
  targets: readonly Target[];
  state: (taskId: string) => TargetState;
  region: string;
  rttMs: (from: string, to: string) => number;
  nowMs: number;
  /** Task ids already tried for this request. */
  exclude?: ReadonlySet<string>;
  /** Uniform in [0, 1): splits traffic between revisions by their percent. */
  random?: () => number;
}

export function pickTarget(input: PickInput): Target | undefined {
  const { targets, state, region, rttMs, nowMs, exclude } = input;
  const usable = targets.filter((t) => !exclude?.has(t.taskId));
  const healthy = usable.filter((t) => state(t.taskId).penaltyUntilMs <= nowMs);
  const pool = healthy.length > 0 ? healthy : usable;
  if (pool.length === 0) return undefined;
  const distance = (t: Target) => (t.region === region ? 0 : rttMs(region, t.region));
  const nearest = Math.min(...pool.map(distance));
  const near = pool.filter((t) => distance(t) === nearest);
  const candidates = byRevisionShare(near, input.random ?? Math.random);
  return candidates.reduce((best, t) => (better(state(t.taskId), state(best.taskId)) ? t : best));
}

function better(a: TargetState, b: TargetState): boolean {
  if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight;
  // Latencies within 20 % of each other are equal: noise must not pin all traffic on one replica.
  if (a.ewmaMs > 0 && b.ewmaMs > 0 && Math.abs(a.ewmaMs - b.ewmaMs) > 0.2 * Math.max(a.ewmaMs, b.ewmaMs))
    return a.ewmaMs < b.ewmaMs;
  return a.lastPickedSeq < b.lastPickedSeq;
}

/**
 * During a rollout the nearest replicas may serve two revisions: one is drawn by the revisions' traffic percent
 * (the canary's share), then the least loaded of its replicas is taken. One revision: all of them.
 */
function byRevisionShare(targets: Target[], random: () => number): Target[] {
  const shares = new Map<number, number>();
  for (const t of targets) shares.set(t.revision, Math.max(shares.get(t.revision) ?? 0, t.trafficPercent));
  if (shares.size < 2) return targets;
  const total = [...shares.values()].reduce((a, b) => a + b, 0);
  if (total <= 0) return targets;
  let draw = random() * total;
  for (const [revision, share] of shares) {
    draw -= share;
    if (draw < 0) return targets.filter((t) => t.revision === revision);
  }
  return targets;
}
