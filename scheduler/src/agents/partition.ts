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
 * Evidence is timed by when it was sent, not when it was read. A heartbeat sent just before a cut but read
 * seconds later (the scheduler's event loop starved under load, or the message buffered in a NATS server or a
 * reconnecting client) would otherwise count as the region being heard after the cut began, and lose the
 * region-mate whose deadline fell in between. So each agent's `aliveAtMs` is its message's send time in this
 * scheduler's clock (`advanceAlive`): the agent's clock offset and the usual delivery latency are taken from
 * the smallest recent lag, never from the late message itself.
 * A partial cut (some of a region's NATS servers lose their gateway while others keep it) that lasts longer
 * than an agent timeout still loses the agents behind the cut servers: nothing in the heartbeats tells that
 * from those machines dying, as long as their region-mates are heard.
 * Pure: the liveness pass feeds it the registry's view and the previous pass's cuts.
 */

/** When an agent was last known alive, in this scheduler's clock, and the delivery lag that clock is based on. */
export interface AliveClock {
  aliveAtMs: number;
  /** Smallest recent (received − sent): the agent's clock offset plus the usual latency. */
  lagFloorMs: number | undefined;
}

/**
 * How far the lag floor may rise per message: it follows a slowly drifting (or stepped back) agent clock within
 * minutes, while one late message barely moves it (a 5 s late heartbeat raises it by 20 ms).
 */
export const LAG_FLOOR_RISE_MS = 20;

/** The clock after a message the agent sent at `sentAtMs` (its clock) and this scheduler read at `receivedAtMs`. */
export function advanceAlive(prev: AliveClock, sentAtMs: number, receivedAtMs: number): AliveClock {
  if (!Number.isFinite(sentAtMs) || sentAtMs <= 0)
    return { ...prev, aliveAtMs: Math.max(prev.aliveAtMs, receivedAtMs) };
  const lag = receivedAtMs - sentAtMs;
  const lagFloorMs = prev.lagFloorMs === undefined ? lag : Math.min(lag, prev.lagFloorMs + LAG_FLOOR_RISE_MS);
  // Never later than it was read; a message older than one already seen (reordered) does not move it back.
  return { aliveAtMs: Math.max(prev.aliveAtMs, Math.min(receivedAtMs, sentAtMs + lagFloorMs)), lagFloorMs };
}

export interface SilenceView {
  agentId: string;
  region: string;
  lastSeenMs: number;
  /** When its last heartbeat or advert was sent, in this scheduler's clock (≤ lastSeenMs; see advanceAlive). */
  aliveAtMs: number;
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
      // The region is reachable if another of its agents was alive and heard from after this one's deadline
      // (sent after it: a message read late says nothing about the region after it was sent).
      const deadline = since + x.timeoutMs;
      const regionHeard = live.some((y) => y !== x && y.aliveAtMs > deadline);
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
