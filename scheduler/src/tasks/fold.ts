/**
 * Pure: folds one agent status report into a job. Fencing: a report counts only when it names the agent and
 * the epoch of the task's current allocation; anything else is stale. Task states only move forward, so
 * redelivered or reordered reports change nothing. A report may also carry the task's last checkpoint (a running
 * task re-reports "running" when it checkpoints): kept on the task, clamped to the scheduler's window, forward only.
 */
import {
  type Checkpoint,
  clonePlain,
  isFinalJobState,
  isFinalTaskState,
  type Job,
  type Task,
  type TaskStatusReport,
} from "@capa/domain";
import { manifestObject } from "../checkpoints/broker.js";
import { recordLineage } from "../checkpoints/resume.js";
import { advances, settle } from "../jobs/settle.js";

export type FoldVerdict = "applied" | "unchanged" | "stale" | "unknown-task";

export interface FoldResult {
  verdict: FoldVerdict;
  /** The new job when `verdict` is "applied". */
  job?: Job;
  /**
   * The report is final and the assignment it names (agent + epoch), if still listed, can be removed. Never for an
   * epoch newer than the task's: that listing is a placement whose job commit had an unknown outcome, kept for the
   * next evaluation to adopt (apply.ts, JobCommitUncertain). A short task may finish before that; removing its
   * listing then would leave nothing to adopt, and the task would be placed and run again.
   */
  final: boolean;
}

export function foldStatus(job: Job, report: TaskStatusReport, nowMs: number): FoldResult {
  const task = job.tasks.find((t) => t.id === report.taskId);
  const final = isFinalTaskState(report.state);
  if (!task) return { verdict: "unknown-task", final };
  if (report.epoch !== task.epoch || report.agentId !== task.agentId || task.epoch === 0)
    return { verdict: "stale", final: final && report.epoch <= task.epoch };
  if (isFinalTaskState(task.state)) return { verdict: "unchanged", final };
  // A task stopped without the tenant cancelling (gang restart, preemption, agent shutdown) must run again.
  let state = report.state;
  if (state === "cancelled" && !job.cancelRequested && !isFinalJobState(job.state)) state = "preempted";
  const advancing = advances(task.state, state);
  // A checkpoint (running tasks re-report "running" with it) only moves forward, within the scheduler's window.
  const reported = report.lastCheckpointMs ?? 0;
  const started = task.startedAtMs || (report.startedAtMs > 0 ? clamp(report.startedAtMs, task.placedAtMs, nowMs) : 0);
  const checkpoint = reported > 0 && !final ? clamp(reported, started || task.placedAtMs, nowMs) : 0;
  const checkpointed = checkpoint > (task.lastCheckpointMs ?? 0);
  const newCheckpoint = reportedCheckpoint(job, task, report);
  const resumed = resumeReport(task, report);
  const digest = report.imageDigest && report.imageDigest !== task.imageDigest ? report.imageDigest.slice(0, 160) : "";
  if (!advancing && !checkpointed && !newCheckpoint && !resumed && !digest) return { verdict: "unchanged", final };
  const next = clonePlain(job);
  const t = next.tasks.find((x) => x.id === report.taskId)!;
  if (checkpointed) t.lastCheckpointMs = checkpoint;
  if (newCheckpoint) t.checkpoint = newCheckpoint;
  if (digest) t.imageDigest = digest;
  if (resumed?.from) {
    t.resumedFrom = resumed.from;
    delete t.resumeNote;
    recordLineage(next, t, resumed.from, nowMs);
  } else if (resumed?.note) t.resumeNote = resumed.note;
  if (!advancing) return { verdict: "applied", job: next, final };
  t.state = state;
  // The billing window is the scheduler's own: an agent's clock may be skewed (or lie), so its timestamps are
  // clamped between the placement commit and the moment this report reached the scheduler.
  if (report.startedAtMs > 0) t.startedAtMs = clamp(report.startedAtMs, t.placedAtMs, nowMs);
  if (final) {
    t.exitCode = report.exitCode;
    t.signal = report.signal;
    const earliestEnd = t.startedAtMs > 0 ? t.startedAtMs : t.placedAtMs;
    t.finishedAtMs = report.finishedAtMs > 0 ? clamp(report.finishedAtMs, earliestEnd, nowMs) : nowMs;
  }
  if (report.message) t.message = report.message.slice(0, 1024);
  settle(next, nowMs);
  return { verdict: "applied", job: next, final };
}

/** Names a checkpoint may have: one path segment, not in progress (dot-names), bounded. */
const CHECKPOINT_NAME = /^[^./][^/]{0,254}$/;

/**
 * The report's checkpoint when it is newer than the one the task holds (a later run's, or a later one of the same
 * run), with the run's identity taken from the task and the fenced report rather than from what the agent wrote.
 */
function reportedCheckpoint(job: Job, task: Task, report: TaskStatusReport): Checkpoint | undefined {
  const c = report.checkpoint;
  if (!c || !CHECKPOINT_NAME.test(c.name) || !Number.isSafeInteger(c.sizeBytes) || c.sizeBytes < 0) return undefined;
  const held = task.checkpoint;
  const newer =
    !held ||
    report.epoch > held.epoch ||
    (report.epoch === held.epoch && (c.createdAtMs > held.createdAtMs || c.name !== held.name));
  if (!newer) return undefined;
  return {
    name: c.name,
    sizeBytes: c.sizeBytes,
    createdAtMs: c.createdAtMs,
    taskId: task.id,
    epoch: report.epoch,
    agentId: report.agentId,
    attempt: Math.max(1, job.attempt ?? 1),
    ...copyOf(c, task.id, report.epoch),
  };
}

/**
 * Where the agent says the copy is. "stored" is believed only for the object the broker names for this task,
 * epoch and checkpoint (an agent cannot point a resume at another task's object; the broker would refuse the
 * read anyway, since it reads only objects of the resuming task's own assignment).
 */
function copyOf(c: Checkpoint, taskId: string, epoch: number): Pick<Checkpoint, "copy" | "copyNote" | "object"> {
  const note = c.copyNote.slice(0, 256);
  if (c.copy === "stored")
    return c.object === manifestObject(taskId, epoch, c.name)
      ? { copy: "stored", copyNote: note, object: c.object }
      : { copy: "agent", copyNote: "", object: "" };
  if (c.copy === "too-large" || c.copy === "copy-failed") return { copy: c.copy, copyNote: note, object: "" };
  return { copy: "agent", copyNote: "", object: "" };
}

/**
 * What the run's agent says it resumed from, once per run: only the checkpoint this run's assignment offered
 * counts (for a gang's worker another rank's; a run placed before offers were recorded: the task's own), so an
 * agent cannot put any other checkpoint into the lineage, and a run that resumed is never recorded twice.
 */
function resumeReport(task: Task, report: TaskStatusReport): { from?: Checkpoint; note?: string } | undefined {
  if (task.resumedFrom) return undefined;
  const from = report.resumedFrom;
  const held = task.resumeFrom ?? task.checkpoint;
  if (from && held && from.name === held.name && from.epoch === held.epoch && from.taskId === held.taskId)
    return { from: { ...held } };
  const note = report.resumeNote?.slice(0, 512);
  return note && note !== task.resumeNote ? { note } : undefined;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), Math.max(low, high));
}
