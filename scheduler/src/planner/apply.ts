/**
 * The plan applier: re-verifies a plan against the stored assignments and commits it with CAS.
 * 1. Per agent (sorted by id): read `capa_allocs/<agent>`, check the agent may take work and every planned GPU
 *    exists, is healthy and is not listed for any task (stopping ones included), then CAS-write the new list.
 * 2. Any refusal or error rolls back the agents already written (the plan is all or nothing, gangs included)
 *    and the caller re-plans; after an error other than a refusal the write that failed may still have landed,
 *    so the re-plan adopts it if it did (JobCommitUncertain).
 * 3. Then the job is CAS-written with each task assigned (agent, GPUs, model, locked price, epoch). If that write
 *    loses a CAS race the assignments are rolled back. If its outcome is unknown (the store timed out or a stream
 *    is electing a leader) they are kept: the agent may already be running them (a short task may even have
 *    finished), so removing them and planning again would run the task twice. The caller's next evaluation of
 *    the job adopts them instead (JobCommitUncertain).
 * The caller holds the job's lock, so status reports for the new epoch wait for the job commit.
 */
import { ConflictError, type Job, type TaskAssignment, type WorkerRendezvous } from "@capa/domain";
import type { Logger } from "pino";
import type { AgentRegistry } from "../agents/registry.js";
import { type ResumeDecision, resumeDecisions } from "../checkpoints/resume.js";
import { generationReason, recordGeneration, workerRendezvous } from "../elastic/membership.js";
import { NEEDS_PLACEMENT, settle } from "../jobs/settle.js";
import { type AllocRepo, CommitRefused } from "../store/alloc-repo.js";
import type { JobEntry, JobRepo } from "../store/job-repo.js";
import type { Placement, Plan } from "./engine.js";
import type { AllocRef, StopRef } from "./reconcile.js";

export type CommitResult = { ok: true; entry: JobEntry } | { ok: false; reason: string };

/** The assignments are written, the job commit's outcome is unknown: evaluate the job again adopting them. */
export class JobCommitUncertain extends Error {
  override readonly name = "JobCommitUncertain";
  constructor(
    readonly jobId: string,
    options: { cause: unknown },
  ) {
    super(`job ${jobId}: the commit of its placement did not complete; its assignments are kept for adoption`, options);
  }
}

export class PlanApplier {
  constructor(
    private readonly allocs: AllocRepo,
    private readonly jobs: JobRepo,
    private readonly agents: AgentRegistry,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  async commit(entry: JobEntry, plan: Plan, epoch: number): Promise<CommitResult> {
    const job = entry.job;
    const byAgent = new Map<string, Placement[]>();
    for (const p of plan.placements) byAgent.set(p.agentId, [...(byAgent.get(p.agentId) ?? []), p]);
    const written: string[] = [];
    let attempted = "";
    const nowMs = this.now();
    // A training gang is always placed whole: this placement is its next rendezvous generation.
    const rendezvous =
      job.spec.kind === "training"
        ? workerRendezvous(job, plan.placements, (id) => this.agents.get(id)?.record.advert.hostname ?? "")
        : new Map<number, WorkerRendezvous>();
    // Decided once, so the assignments and the job record name the same checkpoint (one per gang generation).
    const resume = resumeDecisions(job, plan.placements);
    try {
      for (const agentId of [...byAgent.keys()].sort()) {
        attempted = agentId;
        const placements = byAgent.get(agentId)!;
        await this.allocs.mutate(agentId, (tasks) => {
          this.verify(agentId, placements, tasks);
          const ids = new Set(placements.map((p) => taskIdOf(job, p.replica)));
          const kept = tasks.filter((t) => !ids.has(t.taskId));
          return [
            ...kept,
            ...placements.map((p) =>
              assignmentFor(job, p, epoch, nowMs, rendezvous.get(p.replica), resume.get(p.replica)),
            ),
          ];
        });
        written.push(agentId);
      }
    } catch (err) {
      if (err instanceof CommitRefused) {
        await this.rollback(job, written, epoch);
        return { ok: false, reason: err.message };
      }
      // The failed write itself may have landed (a timeout). One agent's plan: keep it for the re-plan to adopt,
      // rather than place the task again. A plan over several agents is all or nothing: roll that one back too.
      const uncertain = !(err instanceof ConflictError);
      if (uncertain && byAgent.size === 1) throw new JobCommitUncertain(job.id, { cause: err });
      await this.rollback(job, uncertain ? [...written, attempted] : written, epoch);
      throw err;
    }
    try {
      const committed = await this.jobs.mutateLocked(job.id, (current) =>
        assignTasks(current, plan, epoch, nowMs, this.agents, resume),
      );
      if (!committed) throw new Error(`job ${job.id} disappeared`);
      return { ok: true, entry: committed };
    } catch (err) {
      if (!(err instanceof ConflictError) && written.length > 0) throw new JobCommitUncertain(job.id, { cause: err });
      await this.rollback(job, written, epoch);
      throw err;
    }
  }

  /** Marks listed assignments `stop` (only the named epoch) and removes stale or finished ones. */
  async changeListings(stops: StopRef[], removals: AllocRef[]): Promise<boolean> {
    const agents = new Set([...stops.map((s) => s.agentId), ...removals.map((r) => r.agentId)]);
    let freed = false;
    for (const agentId of agents) {
      const stopHere = stops.filter((s) => s.agentId === agentId);
      const removeHere = removals.filter((r) => r.agentId === agentId);
      await this.allocs.mutate(agentId, (tasks) => {
        let changed = false;
        const next: TaskAssignment[] = [];
        for (const t of tasks) {
          if (removeHere.some((r) => r.taskId === t.taskId && r.epoch === t.epoch)) {
            changed = true;
            freed = true;
            continue;
          }
          const stop = stopHere.find((s) => s.taskId === t.taskId && s.epoch === t.epoch);
          if (stop && !t.stop) {
            next.push({ ...t, stop: true, stopReason: stop.reason });
            changed = true;
          } else next.push(t);
        }
        return changed ? next : undefined;
      });
    }
    return freed;
  }

  private verify(agentId: string, placements: Placement[], listed: TaskAssignment[]): void {
    if (!this.agents.isPlaceable(agentId)) throw new CommitRefused(`agent ${agentId} is not taking work`);
    const advert = this.agents.get(agentId)!.record.advert;
    const taken = new Set(listed.flatMap((t) => t.gpuIndices));
    const planned = new Set<number>();
    for (const p of placements)
      for (const index of p.gpuIndices) {
        const gpu = advert.gpus.find((g) => g.index === index);
        if (!gpu || gpu.health !== "ok") throw new CommitRefused(`GPU ${index} on ${agentId} is missing or unhealthy`);
        if (taken.has(index) || planned.has(index)) throw new CommitRefused(`GPU ${index} on ${agentId} is taken`);
        planned.add(index);
      }
  }

  private async rollback(job: Job, agentIds: string[], epoch: number): Promise<void> {
    for (const agentId of agentIds) {
      try {
        await this.allocs.mutate(agentId, (tasks) => {
          const next = tasks.filter((t) => !(t.jobId === job.id && t.epoch === epoch));
          return next.length === tasks.length ? undefined : next;
        });
      } catch (err) {
        // The recovery pass removes listings the job does not reference.
        this.logger.error({ err, agentId, jobId: job.id }, "rollback of an assignment failed");
      }
    }
  }
}

function taskIdOf(job: Job, replica: number): string {
  return job.tasks.find((t) => t.replica === replica)!.id;
}

function assignmentFor(
  job: Job,
  p: Placement,
  epoch: number,
  nowMs: number,
  rendezvous: WorkerRendezvous | undefined,
  resume: ResumeDecision | undefined,
): TaskAssignment {
  return {
    ...(resume?.resumeFrom && { resumeFrom: { ...resume.resumeFrom } }),
    ...(resume?.note && { resumeNote: resume.note }),
    ...(job.spec.checkpoint && { checkpoint: { ...job.spec.checkpoint } }),
    ...(job.spec.data?.length && { data: job.spec.data.map((d) => ({ ...d })) }),
    taskId: taskIdOf(job, p.replica),
    jobId: job.id,
    replica: p.replica,
    gpuIndices: [...p.gpuIndices],
    template: structuredClone(job.spec.template),
    epoch,
    pricePerGpuHour: p.pricePerGpuHour,
    tenant: job.tenant,
    assignedAtMs: nowMs,
    stop: false,
    stopReason: "",
    ...(rendezvous && { rendezvous }),
  };
}

function assignTasks(
  job: Job,
  plan: Plan,
  epoch: number,
  nowMs: number,
  agents: AgentRegistry,
  decisions: ReadonlyMap<number, ResumeDecision>,
): Job {
  const placements = plan.placements;
  const reason = generationReason(job, plan.elastic);
  for (const p of placements) {
    const t = job.tasks.find((x) => x.replica === p.replica);
    if (!t || !NEEDS_PLACEMENT.has(t.state)) continue; // settled meanwhile; the stale listing is removed later
    const gpus = agents.get(p.agentId)?.record.advert.gpus ?? [];
    Object.assign(t, {
      state: "assigned",
      agentId: p.agentId,
      region: p.region,
      gpuIndices: [...p.gpuIndices],
      gpuUuids: p.gpuIndices.map((i) => gpus.find((g) => g.index === i)?.uuid ?? ""),
      gpuModel: p.gpuModel,
      pricePerGpuHour: p.pricePerGpuHour,
      epoch,
      exitCode: 0,
      signal: "",
      placedAtMs: nowMs,
      startedAtMs: 0,
      finishedAtMs: 0,
      message: "",
      interruptible: p.interruptible,
      lastCheckpointMs: 0,
    });
    // What the run resumed from is recorded when its agent reports it (fold.ts): the agent may not get the copy.
    // The offer is kept to check that report against (a gang's worker may resume from another rank's checkpoint).
    delete t.resumedFrom;
    delete t.resumeNote;
    delete t.resumeFrom;
    const resume = decisions.get(p.replica);
    if (resume?.resumeFrom) t.resumeFrom = { ...resume.resumeFrom };
    if (resume?.note) t.resumeNote = resume.note;
  }
  recordGeneration(
    job,
    placements.map((p) => p.replica),
    reason,
    nowMs,
  );
  return settle(job, nowMs);
}
