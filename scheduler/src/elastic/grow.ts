/**
 * The grow check of a running elastic gang (leader only, from the planner under the job's lock). When capacity
 * frees, the planner re-evaluates waiting jobs; an elastic gang below max is one (its standby tasks wait). The
 * engine is asked which size the gang would get if it restarted now, counting its own GPUs as free. Only a
 * strictly better size than the current one (decided by the engine's size filters and scorers) starts a change:
 * the job is marked `changing` with why, and its members are stopped (SIGTERM, kill grace). Once they are gone
 * the whole gang is re-placed at the size the engine then picks, as the next rendezvous generation, every
 * worker with its new WORLD_SIZE and RANK. Nothing is committed here: the GPUs it saw are still its own.
 */

import type { Job } from "@capa/domain";
import { isFinalJobState } from "@capa/domain";
import { ACTIVE } from "../jobs/settle.js";
import type { ClusterStateApi, PlacementEngineApi, Plan } from "../planner/engine.js";
import type { StopRef } from "../planner/reconcile.js";
import type { JobEntry } from "../store/job-repo.js";
import { seedFor } from "../util/ids.js";
import { isElastic } from "./membership.js";

export interface GrowDeps {
  cluster: ClusterStateApi;
  engine: PlacementEngineApi;
  now: () => number;
  placementSpec?: (job: Job) => Job["spec"];
}

export interface GrowVerdict {
  plan: Plan;
  /** The job marked changing, to write; absent = no grow. */
  job?: Job;
  stops: StopRef[];
}

/** True when the job is an elastic gang below max whose members all run (a stable generation). */
export function mayGrow(job: Job): boolean {
  const r = job.rendezvous;
  if (!isElastic(job) || isFinalJobState(job.state) || job.cancelRequested) return false;
  if (!r || r.generation === 0 || r.changing || r.size >= job.spec.elastic!.max) return false;
  const members = job.tasks.filter((t) => t.replica < r.size);
  return members.length === r.size && members.every((t) => t.state === "running");
}

/** The engine's size for the gang if it restarted now; a grow verdict when that is larger. */
export function checkGrow(d: GrowDeps, entry: JobEntry): GrowVerdict | undefined {
  const job = entry.job;
  const r = job.rendezvous!;
  const members = job.tasks.filter((t) => t.replica < r.size);
  const own = members.map((t) => d.cluster.allocation(t.id));
  if (own.some((a) => a === undefined || a.stopping)) return undefined;
  const spec = d.placementSpec ? d.placementSpec(job) : job.spec;
  const nowMs = d.now();
  const plan = d.engine.place(
    d.cluster,
    {
      jobId: job.id,
      spec,
      replicas: job.tasks.map((t) => t.replica),
      elastic: { current: r.size, releasing: own.map((a) => a!), ...budgetLeft(job) },
    },
    { nowMs, seed: seedFor(job.id), relaxations: false },
  );
  if (plan.elastic?.change !== "grow") return { plan, stops: [] };
  const to = plan.elastic.size;
  const why = "capacity freed";
  const next = structuredClone(job);
  next.rendezvous!.changing = { reason: why, sinceMs: nowMs };
  next.reason = `elastic: growing ${r.size} → ${to} workers (${why}); restarting generation ${r.generation}`;
  const stops = members
    .filter((t) => ACTIVE.has(t.state))
    .map((t) => ({
      agentId: t.agentId,
      taskId: t.id,
      epoch: t.epoch,
      reason: `elastic: growing ${r.size} → ${to} workers, generation ${r.generation + 1}`,
    }));
  return { plan, job: next, stops };
}

/** What the size decision may spend: budget − spent, when the job has a budget and a duration to price it. */
export function budgetLeft(job: Job): { budgetLeft?: number } {
  if (job.spec.budget <= 0 || job.spec.expectedDurationSeconds <= 0) return {};
  return { budgetLeft: Math.max(0, job.spec.budget - job.spent) };
}
