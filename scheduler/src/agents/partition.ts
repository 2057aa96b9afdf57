/**
 * Agent loss versus a cut region. An agent silent past its timeout is normally lost at once (its tasks are
 * re-placed). But when every agent of a region goes silent together, the likelier cause is the region's link to
 * the home cluster (a gateway cut, a WAN outage) or NATS itself being down, not every machine dying at once:
 * re-placing then would run every task of the region twice once the link returns. So the agents of a region
 * that is wholly silent are held, neither lost nor re-placed, for `graceMs` after the region's last sign of
 * life; after the grace they are lost as usual. The test is evidence, not timing: an expired agent is lost as
 * soon as another agent of its region is heard after the expired one's deadline (the region is reachable, so
 * this machine is gone; with 2 s heartbeats that costs at most one heartbeat interval of detection). Until
 * then it is held: after a cut no agent of the region is heard at all, however their heartbeats were phased
 * or delayed by load. A region with fewer than `minAgents` live agents cannot tell a
 * dead machine from a cut link and gets no grace (a single agent's death is handled at its own timeout).
 * Pure: the liveness pass feeds it the registry's view.
 */

export interface SilenceView {
  agentId: string;
  region: string;
  lastSeenMs: number;
  /** Already declared lost (not counted as a live agent of its region). */
  lost: boolean;
  /** Silent past its own timeout. */
  expired: boolean;
  /** Its own timeout (half of it is "silent too" for the region test). */
  timeoutMs: number;
}

export interface HeldRegion {
  region: string;
  agents: number;
  /** Since the region's last sign of life. */
  silentMs: number;
}

export interface LossDecision {
  /** Expired agents to declare lost now. */
  lose: string[];
  /** Regions whose agents are held within the grace. */
  held: HeldRegion[];
}

export function decideLosses(
  views: readonly SilenceView[],
  nowMs: number,
  graceMs: number,
  minAgents = 2,
): LossDecision {
  const byRegion = new Map<string, SilenceView[]>();
  for (const v of views) {
    if (v.lost) continue;
    const list = byRegion.get(v.region) ?? [];
    list.push(v);
    byRegion.set(v.region, list);
  }
  const lose: string[] = [];
  const held: HeldRegion[] = [];
  for (const [region, live] of byRegion) {
    const expired = live.filter((v) => v.expired);
    if (expired.length === 0) continue;
    if (live.length < minAgents) {
      lose.push(...expired.map((v) => v.agentId));
      continue;
    }
    const silentMs = nowMs - Math.max(...live.map((v) => v.lastSeenMs));
    let holding = 0;
    for (const x of expired) {
      // The region is reachable if another of its agents was heard after this one's deadline.
      const deadline = x.lastSeenMs + x.timeoutMs;
      const regionHeard = live.some((y) => y !== x && y.lastSeenMs > deadline);
      if (regionHeard || silentMs >= graceMs) lose.push(x.agentId);
      else holding++;
    }
    if (holding > 0) held.push({ region, agents: live.length, silentMs });
  }
  return { lose, held };
}
