/**
 * Pure: which checkpoint a (re-)placed task resumes from. A task keeps the newest complete checkpoint of any of
 * its runs (fold.ts); a new run on agent X can have a checkpoint locally when
 * - X wrote it (the agent copies it out of the writing task's checkpoint dir), or
 * - a copy is in the scheduler's checkpoint store (`copy: "stored"`), which X fetches through the scheduler.
 * Otherwise the run starts fresh and the note says why (e.g. the checkpoint was over the copy limit and its agent
 * is gone), for the task's message, the job record and the task's own log.
 *
 * A training gang (a training job of more than one task, elastic or fixed) resumes as ONE: every worker of a new
 * generation (a grow, a shrink's re-placement, a gang restart) gets the same checkpoint, the gang's checkpoint.
 * Authoritative is the newest complete checkpoint ANY rank reported, because data-parallel ranks hold the same
 * state (torchrun scripts usually save on rank 0 only) and the newest one loses the least work. Newest = written by
 * the latest run (highest epoch: epochs only grow, and a generation starts after the last one's workers are gone,
 * so agents' clocks do not decide across generations), then the latest `createdAtMs` (the writing agent's clock),
 * then the lower rank. Workers added by a grow have no checkpoint of their own, so without this they
 * would start from step 0 while the others resume. Candidates every placed agent can have are preferred, so the
 * generation never splits between ranks that resume and ranks that start fresh when a usable one exists. Jobs
 * that keep one shard per rank should write them to a shared absolute `checkpoint.dir` instead.
 */
import type { Checkpoint, Job, LineageEntry, Task } from "@capa/domain";

export interface ResumeDecision {
  resumeFrom?: Checkpoint;
  note?: string;
}

/** Where one task of a plan goes (the planner's Placement, narrowed). */
export interface PlacedReplica {
  replica: number;
  agentId: string;
}

/** One decision per placed replica: a training gang's placements all get the gang's checkpoint. */
export function resumeDecisions(job: Job, placements: readonly PlacedReplica[]): Map<number, ResumeDecision> {
  const out = new Map<number, ResumeDecision>();
  const gang = isTrainingGang(job)
    ? gangCheckpoint(
        job,
        placements.map((p) => p.agentId),
      )
    : undefined;
  for (const p of placements) {
    const task = job.tasks.find((t) => t.replica === p.replica);
    if (!task) continue;
    out.set(p.replica, decide(job, isTrainingGang(job) ? gang : task.checkpoint, p.agentId));
  }
  return out;
}

/** A single task's decision (its own checkpoint, or the gang's when it belongs to a training gang). */
export function resumeDecision(job: Job, task: Task, agentId: string): ResumeDecision {
  return resumeDecisions(job, [{ replica: task.replica, agentId }]).get(task.replica) ?? {};
}

export function isTrainingGang(job: Pick<Job, "spec" | "tasks">): boolean {
  return job.spec.kind === "training" && job.tasks.length > 1;
}

/**
 * The gang's checkpoint for a generation placed on `agentIds`: the newest any rank reported among those every
 * placed agent can have; when none is usable everywhere, the newest of all (the ranks that cannot have it start
 * fresh and their note says why).
 */
export function gangCheckpoint(job: Job, agentIds: readonly string[]): Checkpoint | undefined {
  const rank = new Map(job.tasks.map((t) => [t.id, t.replica]));
  const all = job.tasks
    .flatMap((t) => (t.checkpoint ? [t.checkpoint] : []))
    .sort(
      (a, b) =>
        b.epoch - a.epoch || b.createdAtMs - a.createdAtMs || (rank.get(a.taskId) ?? 0) - (rank.get(b.taskId) ?? 0),
    );
  return all.find((c) => agentIds.every((a) => usableOn(c, a))) ?? all[0];
}

function usableOn(c: Checkpoint, agentId: string): boolean {
  return c.agentId === agentId || c.copy === "stored";
}

function decide(job: Job, c: Checkpoint | undefined, agentId: string): ResumeDecision {
  if (!job.spec.checkpoint || !c) return {};
  if (usableOn(c, agentId)) return { resumeFrom: { ...c } };
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
