/**
 * Fencing epochs: strictly increasing within a process and never below the job's KV revision at planning time
 * (the jobs bucket's revisions only grow), seeded at start from the highest epoch found in KV. Agents echo the
 * epoch in every report; a report whose (agent, epoch) is not the task's current allocation is ignored.
 */
export class EpochSource {
  private last = 0;

  /** Never issue anything at or below `epoch` (called at start with the highest epoch stored). */
  observe(epoch: number): void {
    if (epoch > this.last) this.last = epoch;
  }

  next(floor: number): number {
    this.last = Math.max(this.last + 1, floor);
    return this.last;
  }
}
