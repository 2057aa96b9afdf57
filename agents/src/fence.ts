/**
 * Self-fencing. The scheduler holds a cut region's agents for its partition grace, then loses them and re-places
 * their tasks elsewhere; an agent still cut off keeps running its copies unless it stops them itself. So the agent
 * keeps the time of its last contact with the scheduler's state (a read or update of its assignments, which live
 * in the home region's JetStream: a cut region cannot reach them) and stops each task once it has been out of
 * contact for the grace less the task's kill grace (SIGTERM → SIGKILL must be over before the re-placed copy can
 * start) less a margin for the scheduler's liveness pass. Its last contact is at or before the scheduler's last
 * heartbeat from it, so measuring from it fences early, never late. Pure: the agent feeds it its clock.
 */

export interface FenceTimes {
  partitionGraceMs: number;
  heartbeatIntervalMs: number;
}

/** Out of contact this long, a task with this kill grace is stopped. Never under 3 heartbeats (a reconnect). */
export function fenceAfterMs(t: FenceTimes, killGraceMs: number): number {
  return Math.max(3 * t.heartbeatIntervalMs, t.partitionGraceMs - killGraceMs - 2 * t.heartbeatIntervalMs);
}

export class ContactClock {
  private lastContactMs: number;

  constructor(private readonly now: () => number) {
    this.lastContactMs = now();
  }

  contact(): void {
    this.lastContactMs = Math.max(this.lastContactMs, this.now());
  }

  silentMs(): number {
    return this.now() - this.lastContactMs;
  }

  /** The tasks (id → kill grace) to fence now. */
  due(tasks: ReadonlyMap<string, number>, t: FenceTimes): string[] {
    const silent = this.silentMs();
    return [...tasks].filter(([, killGraceMs]) => silent > fenceAfterMs(t, killGraceMs)).map(([id]) => id);
  }
}
