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
 *
 * A cut ends with the region's agents coming back one by one (their NATS servers restart, each reconnects on its
 * own backoff). The first one heard is evidence that the region is reachable, but not that the others are dead:
 * they were silent because of the cut. So a region seen wholly silent (every live agent past its timeout) is
 * remembered as cut (`RegionCut`, carried from one pass to the next by the caller); once any of its agents is
 * heard again, each agent that went silent before that return gets a fresh timeout counted from the return,
 * and is lost only if it stays silent past it while the region is heard. A single dead machine never makes its
 * region wholly silent, so its detection is not delayed.
 * Pure: the liveness pass feeds it the registry's view and the previous pass's cuts.
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
  /** Regions seen wholly silent whose silent agents are not settled yet: pass to the next call. */
  cuts: Map<string, RegionCut>;
}

/** A region seen wholly silent: its last sign of life before the silence, and when it was first heard again. */
export interface RegionCut {
  lastSignMs: number;
  returnedAtMs?: number;
}

export function decideLosses(
  views: readonly SilenceView[],
  nowMs: number,
  graceMs: number,
  minAgents = 2,
  previousCuts: ReadonlyMap<string, RegionCut> = new Map(),
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
  const cuts = new Map<string, RegionCut>();
  for (const [region, live] of byRegion) {
    const expired = live.filter((v) => v.expired);
    if (expired.length === 0) continue;
    if (live.length < minAgents) {
      lose.push(...expired.map((v) => v.agentId));
      continue;
    }
    const lastSignMs = Math.max(...live.map((v) => v.lastSeenMs));
    const silentMs = nowMs - lastSignMs;
    let cut = previousCuts.get(region);
    if (!cut && expired.length === live.length) cut = { lastSignMs };
    if (cut && cut.returnedAtMs === undefined && lastSignMs > cut.lastSignMs) cut = { ...cut, returnedAtMs: nowMs };
    let holding = 0;
    for (const x of expired) {
      // Silent since before the region came back: its timeout counts from the return, not its last heartbeat.
      const since = cut?.returnedAtMs !== undefined && x.lastSeenMs <= cut.lastSignMs ? cut.returnedAtMs : x.lastSeenMs;
      // The region is reachable if another of its agents was heard after this one's deadline.
      const deadline = since + x.timeoutMs;
      const regionHeard = live.some((y) => y !== x && y.lastSeenMs > deadline);
      if (regionHeard || silentMs >= graceMs) lose.push(x.agentId);
      else holding++;
    }
    if (holding > 0) {
      held.push({ region, agents: live.length, silentMs });
      if (cut) cuts.set(region, cut);
    }
  }
  return { lose, held, cuts };
}
