/**
 * Pure: what must change for one job, given where its tasks are listed in the agents' assignments.
 * - Listings that do not match the task's (agent, epoch) are stale → removed (the agent stops them), except at
 *   recovery, where a newer listing for a task still waiting is adopted (the crash fell between the assignment
 *   commit and the job commit).
 * - Listings of final tasks are removed; listings of tasks that must stop (job final or cancelled, gang restart)
 *   get `stop`.
 * - Active tasks with no listing are orphans: lost (re-placed) or, when the job is ending, cancelled.
 * - Tasks waiting for a placement are returned in `place`; a gang only once none of its members still runs.
 */
import {
  clonePlain,
  isFinalJobState,
  isFinalTaskState,
  type Job,
  memberTasks,
  type TaskAssignment,
} from "@capa/domain";
import { ACTIVE, awaitsRestart, NEEDS_PLACEMENT, settle } from "../jobs/settle.js";

export interface Listing {
  agentId: string;
  assignment: TaskAssignment;
}

export interface AllocRef {
  agentId: string;
  taskId: string;
  epoch: number;
}

export interface StopRef extends AllocRef {
  reason: string;
}

export interface ReconcileResult {
  /** The job after direct changes, when there are any. */
  job?: Job;
  stops: StopRef[];
  removals: AllocRef[];
  place: number[];
  /** Tasks wait for a retry's backoff: evaluate the job again at this time. */
  wakeAtMs?: number;
}

export interface ReconcileOptions {
  nowMs: number;
  /** Adopt newer listings of waiting tasks (only at recovery, before status processing starts). */
  adopt?: boolean;
  agentRegion?: (agentId: string) => string;
}

export function reconcile(
  original: Job,
  listings: (taskId: string) => Listing[],
  options: ReconcileOptions,
): ReconcileResult {
  const job = clonePlain(original);
  let changed = false;
  const stops: StopRef[] = [];
  const removals: AllocRef[] = [];
  const ending = isFinalJobState(job.state) || job.cancelRequested;
  const gangRestart =
    job.spec.kind === "training" &&
    !ending &&
    memberTasks(job).some(awaitsRestart) &&
    job.tasks.some((t) => ACTIVE.has(t.state));

  for (const task of job.tasks) {
    let current: Listing | undefined;
    const stale: Listing[] = [];
    for (const l of listings(task.id)) {
      if (l.agentId === task.agentId && l.assignment.epoch === task.epoch && task.epoch > 0) current = l;
      else stale.push(l);
    }
    if (options.adopt && !ending && !current && NEEDS_PLACEMENT.has(task.state)) {
      const newest = stale
        .filter((l) => !l.assignment.stop && l.assignment.epoch > task.epoch)
        .sort((a, b) => b.assignment.epoch - a.assignment.epoch)[0];
      if (newest) {
        adoptListing(task, newest, options);
        stale.splice(stale.indexOf(newest), 1);
        current = newest;
        changed = true;
      }
    }
    for (const l of stale) removals.push({ agentId: l.agentId, taskId: task.id, epoch: l.assignment.epoch });
    if (current) {
      const ref = { agentId: current.agentId, taskId: task.id, epoch: current.assignment.epoch };
      if (isFinalTaskState(task.state)) removals.push(ref);
      else if (!current.assignment.stop && (ending || gangRestart))
        stops.push({ ...ref, reason: job.cancelRequested ? "cancelled" : ending ? "job finished" : "gang restart" });
    } else if (ACTIVE.has(task.state)) {
      task.state = ending ? "cancelled" : "lost";
      task.message = ending ? "stopped: job ending" : "assignment missing";
      task.finishedAtMs = options.nowMs;
      changed = true;
    }
  }

  if (job.cancelRequested && !isFinalJobState(job.state)) {
    for (const t of job.tasks)
      if (t.state === "pending") {
        t.state = "cancelled";
        t.message = "cancelled before placement";
        t.finishedAtMs = options.nowMs;
        changed = true;
      }
  }
  const before = job.state;
  settle(job, options.nowMs);
  if (job.state !== before) changed = true;

  let place: number[] = [];
  let wakeAtMs: number | undefined;
  if (!isFinalJobState(job.state) && !job.cancelRequested) {
    const waiting = job.tasks.filter((t) => NEEDS_PLACEMENT.has(t.state));
    const gangBusy = job.spec.kind === "training" && job.tasks.some((t) => ACTIVE.has(t.state));
    // A retry's backoff holds its tasks back (a gang: all of it, since it is placed all or nothing).
    const backoff = waiting.filter((t) => (t.notBeforeMs ?? 0) > options.nowMs);
    if (backoff.length > 0) wakeAtMs = Math.min(...backoff.map((t) => t.notBeforeMs!));
    const held = job.spec.kind === "training" ? backoff.length > 0 : false;
    if (!gangBusy && !held) place = waiting.filter((t) => !backoff.includes(t)).map((t) => t.replica);
  }
  return { ...(changed ? { job } : {}), stops, removals, place, ...(wakeAtMs !== undefined && { wakeAtMs }) };
}

function adoptListing(task: Job["tasks"][number], l: Listing, options: ReconcileOptions): void {
  const a = l.assignment;
  task.state = "assigned";
  task.agentId = l.agentId;
  task.region = options.agentRegion?.(l.agentId) ?? task.region;
  task.gpuIndices = [...a.gpuIndices];
  task.pricePerGpuHour = a.pricePerGpuHour;
  task.epoch = a.epoch;
  task.placedAtMs = a.assignedAtMs;
  task.exitCode = 0;
  task.signal = "";
  task.startedAtMs = 0;
  task.finishedAtMs = 0;
  task.message = "recovered from the agent's assignments";
}
