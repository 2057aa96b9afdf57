/**
 * Pure: the membership of training gangs (rendezvous generations) and the elastic rules that run inside every
 * job writer's settle(), next to the retry policy.
 *
 * - Every placement of a whole training gang is a new generation: its workers get torchrun's env for it
 *   (`workerRendezvous`), and the job records it (`recordGeneration`). A worker's RANK is its replica number:
 *   an elastic gang of size k always runs on replicas 0..k-1; the others stand by as pending tasks.
 * - An elastic gang that loses members (lost, preempted, rejected) while enough remain for its min is marked
 *   `changing` (`noteMembershipLoss`): it is re-placed at the size the engine picks, and those endings do not
 *   count as a retry attempt (`retryExempt`). With fewer than min left, nothing is marked and the normal gang path
 *   runs (the retry policy counts it, or the gang waits to be re-placed whole).
 * - A grow (planner/grow.ts) marks `changing` too, before it stops the members.
 */
import {
  type Generation,
  isFinalJobState,
  type Job,
  type Rendezvous,
  resetTaskToPending,
  type Task,
  type WorkerRendezvous,
} from "@capa/domain";

/** Generations kept on the job record (oldest dropped first). */
export const MAX_GENERATIONS = 50;
/** torchrun's default port is 29500; each job and generation gets its own port above it (see masterPort). */
export const MASTER_PORT_BASE = 29500;
export const MASTER_PORT_SPAN = 10000;

const GONE: ReadonlySet<string> = new Set(["lost", "preempted", "rejected"]);

export function isElastic(job: Pick<Job, "spec">): boolean {
  return job.spec.kind === "training" && job.spec.elastic !== undefined;
}

/** Marks an elastic gang as changing when members ended and at least min are left (see the file comment). */
export function noteMembershipLoss(job: Job, nowMs: number): void {
  if (!isElastic(job) || isFinalJobState(job.state) || job.cancelRequested) return;
  const r = job.rendezvous;
  if (!r || r.generation === 0 || r.changing) return;
  const formedAt = r.history.at(-1)?.atMs ?? 0;
  const gone = job.tasks.filter((t) => t.replica < r.size && GONE.has(t.state) && t.placedAtMs >= formedAt);
  if (gone.length === 0) return;
  const left = r.size - gone.length;
  if (left < job.spec.elastic!.min) return;
  const first = gone[0]!;
  const what = `task ${first.id} ${first.state}${first.message ? ` (${first.message.slice(0, 160)})` : ""}`;
  const more = gone.length > 1 ? ` and ${gone.length - 1} more` : "";
  r.changing = { reason: `${what}${more}; ${left} of ${r.size} workers left`, sinceMs: nowMs };
}

/** A member's ending that re-places an elastic gang at a new size rather than starting a retry attempt. */
export function retryExempt(job: Job, t: Task): boolean {
  return isElastic(job) && job.rendezvous?.changing !== undefined && GONE.has(t.state);
}

/** A deterministic port per job and generation, so two gangs on one host (or two generations) do not collide. */
export function masterPort(jobId: string, generation: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${jobId}/${generation}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return MASTER_PORT_BASE + (h % MASTER_PORT_SPAN);
}

/**
 * The rendezvous of each worker of a gang placement, by replica: generation = the job's next, rank = position by
 * replica, master = rank 0's host. Each worker is its own torchrun "node" with one local process (LOCAL_RANK 0,
 * LOCAL_WORLD_SIZE 1, GROUP_RANK = RANK): it sees only its own GPUs (CUDA_VISIBLE_DEVICES), so `cuda:LOCAL_RANK`
 * must be its first GPU even when two workers share a machine; a worker with several GPUs runs
 * `torchrun --nproc-per-node=G --nnodes=$WORLD_SIZE --node-rank=$RANK` itself.
 */
export function workerRendezvous(
  job: Pick<Job, "id" | "rendezvous">,
  placements: ReadonlyArray<{ replica: number; agentId: string }>,
  hostOf: (agentId: string) => string,
): Map<number, WorkerRendezvous> {
  const sorted = [...placements].sort((a, b) => a.replica - b.replica);
  const out = new Map<number, WorkerRendezvous>();
  if (sorted.length === 0) return out;
  const generation = (job.rendezvous?.generation ?? 0) + 1;
  const master = sorted[0]!.agentId;
  const masterAddr = hostOf(master) || master;
  const port = masterPort(job.id, generation);
  sorted.forEach((p, rank) => {
    out.set(p.replica, {
      generation,
      worldSize: sorted.length,
      rank,
      localRank: 0,
      localWorldSize: 1,
      masterAddr,
      masterPort: port,
    });
  });
  return out;
}

/**
 * After a gang placement commits: the job's next generation, and for an elastic gang its standby tasks (waiting,
 * not placed) back to pending. `how` says why the generation formed (the size decision, a restart).
 */
export function recordGeneration(job: Job, placedReplicas: readonly number[], how: string, nowMs: number): void {
  if (job.spec.kind !== "training" || placedReplicas.length === 0) return;
  const previous: Rendezvous = job.rendezvous ?? { generation: 0, size: 0, history: [] };
  const size = placedReplicas.length;
  const generation: Generation = { generation: previous.generation + 1, size, reason: how.slice(0, 512), atMs: nowMs };
  job.rendezvous = {
    generation: generation.generation,
    size,
    history: [...previous.history, generation].slice(-MAX_GENERATIONS),
  };
  if (!isElastic(job)) return;
  const placed = new Set(placedReplicas);
  for (const t of job.tasks) {
    if (placed.has(t.replica) || (!GONE.has(t.state) && t.state !== "pending")) continue;
    resetTaskToPending(
      t,
      `standby: generation ${generation.generation} runs ${size} of ${job.spec.elastic!.max} workers`,
    );
    t.notBeforeMs = 0;
  }
}

/** Why a generation formed, in words, from the engine's size decision (elastic) or the gang's history. */
export function generationReason(
  job: Pick<Job, "rendezvous">,
  elastic: { change: string; previous: number; size: number; cause: string } | undefined,
): string {
  const first = (job.rendezvous?.generation ?? 0) === 0;
  if (!elastic) return first ? "start" : "gang re-placed";
  const cause = elastic.cause ? `: ${elastic.cause}` : "";
  switch (elastic.change) {
    case "grow":
      return `grew ${elastic.previous} → ${elastic.size}${cause}`;
    case "shrink":
      return `shrank ${elastic.previous} → ${elastic.size}${cause}`;
    case "keep":
      return `re-placed at ${elastic.size}${cause}`;
    default:
      return first ? `start at ${elastic.size}` : `re-placed at ${elastic.size}${cause}`;
  }
}
