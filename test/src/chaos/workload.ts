/** Jobs the faults submit, and the client-side bookkeeping of a submit burst (what was acknowledged, when). */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as pb from "@capa/api";
import type { SchedulerClient } from "@capa/cli";
import { waitFor } from "@capa/testkit";
import { status } from "@grpc/grpc-js";

export const TENANT = "chaos";

/**
 * A one-GPU batch job. Every run appends its shell's pid to `<marks>/<task>.pids` first (then `exec`s, so the
 * pid is the task's), which is how the suite counts runs and tells a duplicate run from a re-placement.
 */
export function markedSpec(marks: string, seconds: number, regions: string[] = []): pb.JobSpec {
  const body = seconds > 0 ? `exec sleep ${seconds}` : "exit 0";
  return pb.JobSpec.fromPartial({
    kind: pb.JobKind.JOB_KIND_BATCH,
    replicas: 1,
    gpusPerReplica: 1,
    regions,
    template: {
      command: ["sh", "-c", `echo $$ >> "$CHAOS_MARKS/$CAPA_TASK_ID.pids"; ${body}`],
      env: { CHAOS_MARKS: marks },
      workingDir: "",
      killGraceSeconds: 2,
    },
  });
}

/** Pids of every run of a task so far, in start order. */
export function runsOf(marks: string, taskId: string): number[] {
  const file = join(marks, `${taskId}.pids`);
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number);
}

export interface Ack {
  requestId: string;
  jobId: string;
  sentAtMs: number;
  ackedAtMs: number;
}

export interface Burst {
  acks: Ack[];
  /** Submits that failed for good (after the client's retries). */
  failures: { requestId: string; error: string }[];
}

/**
 * Submits `count` jobs with `concurrency` submitters through the HA client; `onAck` sees each acknowledgement
 * (a fault is injected from there). Request ids are `<prefix>-<n>`, so a retry is deduplicated.
 */
export async function submitBurst(
  client: SchedulerClient,
  o: {
    prefix: string;
    count: number;
    concurrency: number;
    spec: () => pb.JobSpec;
    onAck?: (ack: Ack, acks: Ack[]) => void;
  },
): Promise<Burst> {
  const burst: Burst = { acks: [], failures: [] };
  let next = 0;
  const worker = async () => {
    while (next < o.count) {
      const requestId = `${o.prefix}-${next++}`;
      const sentAtMs = Date.now();
      try {
        const r = await client.submitJob({ requestId, tenant: TENANT, spec: o.spec() });
        const ack = { requestId, jobId: r.job!.id, sentAtMs, ackedAtMs: Date.now() };
        burst.acks.push(ack);
        o.onAck?.(ack, burst.acks);
      } catch (err) {
        burst.failures.push({ requestId, error: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return burst;
}

/** Longest stretch with no acknowledgement between `fromMs` and the last ack (the write path stalled). */
export function longestStall(acks: readonly Ack[], fromMs: number): number {
  const times = acks
    .map((a) => a.ackedAtMs)
    .filter((t) => t >= fromMs)
    .sort((a, b) => a - b);
  let longest = 0;
  let previous = fromMs;
  for (const t of times) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return longest;
}

export const FINAL = new Set([
  pb.JobState.JOB_STATE_SUCCEEDED,
  pb.JobState.JOB_STATE_FAILED,
  pb.JobState.JOB_STATE_CANCELLED,
]);

/**
 * After a fault: every acknowledged job must exist and reach a final state. Returns the ids not found
 * (acknowledged but lost) and those not final by the deadline, and the final jobs.
 */
export async function settleAcked(
  client: SchedulerClient,
  acks: readonly Ack[],
  timeoutMs: number,
): Promise<{ lost: string[]; unfinished: string[]; jobs: Map<string, pb.Job> }> {
  const jobs = new Map<string, pb.Job>();
  const lost = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  let pending = acks.map((a) => a.jobId);
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (const id of pending) {
      try {
        const { job } = await client.getJob({ jobId: id });
        lost.delete(id);
        if (job && FINAL.has(job.state)) jobs.set(id, job);
        else still.push(id);
      } catch (err) {
        if ((err as { code?: number }).code === status.NOT_FOUND) lost.add(id);
        still.push(id);
      }
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
  return { lost: [...lost], unfinished: pending.filter((id) => !lost.has(id)), jobs };
}

/** Resolves with the job once `predicate` holds (polling through the HA client). */
export function jobWhen(
  client: SchedulerClient,
  jobId: string,
  predicate: (job: pb.Job) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<pb.Job> {
  return waitFor(
    async () => {
      const { job } = await client.getJob({ jobId });
      return job && predicate(job) ? job : undefined;
    },
    { timeoutMs, intervalMs: 100, what },
  );
}

/** Submits an hour-long one-GPU sleeper pinned to `region` and resolves once its task runs. */
export async function runningSleeper(
  client: SchedulerClient,
  marks: string,
  region: string,
  requestId: string,
): Promise<{ jobId: string; task: pb.Task }> {
  const { job } = await client.submitJob({ requestId, tenant: TENANT, spec: markedSpec(marks, 3_600, [region]) });
  const running = await jobWhen(
    client,
    job!.id,
    (j) => j.tasks[0]?.state === pb.TaskState.TASK_STATE_RUNNING,
    `sleeper ${requestId} running`,
  );
  return { jobId: job!.id, task: running.tasks[0]! };
}
