/**
 * Pure: which checkpoint a (re-)placed task resumes from. A task keeps the newest complete checkpoint of any of
 * its runs (fold.ts); a new run on agent X resumes from it when X can have it locally:
 * - X wrote it (same agent: the agent copies it out of its checkpoint dir), or
 * - a copy is in the scheduler's checkpoint store (`copy: "stored"`), which X fetches through the scheduler.
 * Otherwise the run starts fresh and the note says why (e.g. the checkpoint was over the copy limit and its agent
 * is gone), for the task's message, the job record and the task's own log.
 */
import type { Checkpoint, Job, LineageEntry, Task } from "@capa/domain";

export interface ResumeDecision {
  resumeFrom?: Checkpoint;
  note?: string;
}

export function resumeDecision(job: Job, task: Task, agentId: string): ResumeDecision {
  const c = task.checkpoint;
  if (!job.spec.checkpoint || !c) return {};
  if (c.agentId === agentId || c.copy === "stored") return { resumeFrom: { ...c } };
  const why =
    c.copy === "too-large"
      ? `checkpoint ${c.name} is too large to copy between agents (${c.copyNote})`
      : c.copy === "copy-failed"
        ? `checkpoint ${c.name} could not be copied off agent ${c.agentId} (${c.copyNote})`
        : `checkpoint ${c.name} was not yet copied off agent ${c.agentId}`;
  return { note: `${why}; this run on ${agentId} starts fresh` };
}

/** Lineage entries kept on the job record (oldest dropped first). */
export const MAX_LINEAGE = 100;

/** Records on the job that this run of `task` resumed from `from`. */
export function recordLineage(job: Job, task: Task, from: Checkpoint, nowMs: number): void {
  const entry: LineageEntry = {
    taskId: task.id,
    epoch: task.epoch,
    agentId: task.agentId,
    attempt: Math.max(1, job.attempt ?? 1),
    resumedFrom: { ...from },
    atMs: nowMs,
  };
  job.lineage = [...(job.lineage ?? []), entry].slice(-MAX_LINEAGE);
}
