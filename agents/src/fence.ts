/**
 * Self-fencing. The scheduler re-places a silent agent's tasks (scheduler/src/agents/partition.ts) either
 *  - after the agent's own timeout (its advert TTL), when the agent is silent alone: another agent of its region
 *    is heard after its deadline, or its region has a single agent; or
 *  - after its partition grace, when every agent of a region (two or more) went silent together (a cut region).
 * An agent still cut off keeps running its copies unless it stops them itself, so it keeps two clocks and stops
 * each task once either runs out, less the task's kill grace (SIGTERM → SIGKILL must be over before the re-placed
 * copy can start) and a margin of 2 heartbeats for the scheduler's liveness pass:
 *  - `state`: its last contact with the scheduler's state (a read or update of its assignments, which live in the
 *    home region's JetStream: a cut region cannot reach them), against the partition grace. This covers a cut
 *    region: its agents still reach their own NATS servers, but nothing beyond the region's gateways.
 *  - `bus` (opt-in, `--fence-on-disconnect`): its last round trip to its NATS server, against its own timeout.
 *    Without one its heartbeats reach nobody, and it cannot tell its own link being down (the scheduler loses it
 *    alone, at its timeout, while its region-mates are heard) from its region's NATS being down (the scheduler
 *    holds the region for the grace). Only the short clock is safe in both, but it makes every whole-region
 *    NATS outage longer than a few seconds (a restart of the region's servers) stop and re-place all of the
 *    region's tasks, which the grace exists to avoid. So it is the operator's choice: on where a double run is
 *    the worse failure (two copies writing the same checkpoints, two replicas answering as one), off by default,
 *    where a lone agent cut from NATS overlaps its re-placed copies until the state clock fences it.
 * Each contact is dated at or before the scheduler's last evidence of the agent (a round trip is dated when the
 * ping was sent), so both clocks fence early, never late. Neither clock fences before 3 heartbeats (a reconnect),
 * and the bus clock not before half the timeout either (one stalled event loop is not an outage): a task whose
 * kill grace does not fit is stopped then, which shortens the overlap but cannot avoid it (give such agents a
 * longer advert TTL). What no clock here can see: a one-agent region gets no grace, and a partial cut (some of a
 * region's servers lose their gateway) loses the agents behind it at their timeout, while those agents still
 * reach their servers and only the state clock runs for them.
 * Pure: the agent feeds it its clock.
 */

export interface FenceTimes {
  /** The scheduler's partition grace: how long it holds a wholly silent region. */
  partitionGraceMs: number;
  heartbeatIntervalMs: number;
  /** How long the scheduler waits for this agent alone (its advert TTL, unless the scheduler overrides it). */
  agentTimeoutMs: number;
  /**
   * Whether the bus clock fences (`--fence-on-disconnect`; off by default). Off, an agent with no NATS at all
   * keeps its tasks until the state clock runs out, as a region the scheduler holds for the grace expects.
   */
  busClock?: boolean;
}

/** Which contact ran out: the scheduler's state (JetStream) or the NATS connection itself. */
export type FenceCause = "state" | "bus";

/** Out of contact of this kind this long, a task with this kill grace is stopped. */
export function fenceAfterMs(t: FenceTimes, killGraceMs: number, cause: FenceCause = "state"): number {
  const reconnect = 3 * t.heartbeatIntervalMs;
  const margin = 2 * t.heartbeatIntervalMs;
  if (cause === "state") return Math.max(reconnect, t.partitionGraceMs - killGraceMs - margin);
  return Math.max(reconnect, t.agentTimeoutMs / 2, t.agentTimeoutMs - killGraceMs - margin);
}

export class ContactClock {
  private lastContactMs: number;

  constructor(private readonly now: () => number) {
    this.lastContactMs = now();
  }

  /** Contact, dated `atMs` (when the evidence was sent) or now. */
  contact(atMs: number = this.now()): void {
    this.lastContactMs = Math.max(this.lastContactMs, Math.min(atMs, this.now()));
  }

  silentMs(): number {
    return this.now() - this.lastContactMs;
  }
}

export interface FenceDue {
  taskId: string;
  cause: FenceCause;
  silentMs: number;
}

/** Both clocks of one agent. */
export class Fence {
  /** Reads and updates of the agent's assignments. */
  readonly state: ContactClock;
  /** Round trips to the agent's NATS server. */
  readonly bus: ContactClock;

  constructor(now: () => number) {
    this.state = new ContactClock(now);
    this.bus = new ContactClock(now);
  }

  /** The tasks (id → kill grace) to fence now, each with the clock that ran out (the bus first: it is shorter). */
  due(tasks: ReadonlyMap<string, number>, t: FenceTimes): FenceDue[] {
    const out: FenceDue[] = [];
    for (const [taskId, killGraceMs] of tasks) {
      for (const cause of t.busClock ? (["bus", "state"] as const) : (["state"] as const)) {
        const silentMs = this[cause].silentMs();
        if (silentMs > fenceAfterMs(t, killGraceMs, cause)) {
          out.push({ taskId, cause, silentMs });
          break;
        }
      }
    }
    return out;
  }
}
