/**
 * The Schedule kind's durable record (`capa_schedules/<tenant>.<name>`): the spec, the next cron fire time, the
 * queue of triggers not yet turned into runs, and the bounded run history. Every change is a CAS write; the
 * leader's controller is the only one that turns due fires and triggers into runs.
 */
import type { JobState, ScheduleSpec } from "@capa/domain";

export type RunCause = "cron" | "trigger";
export type RunOutcome = "started" | "skipped" | "failed";

export interface RunRecord {
  /** `<schedule>-<seq>`; its job's request id derives from it, so resubmitting after a crash makes no second job. */
  runId: string;
  cause: RunCause;
  triggerId: string;
  reason: string;
  dueAtMs: number;
  startedAtMs: number;
  outcome: RunOutcome;
  /** "" until the submission answered (started runs) or for ever (skipped, failed). */
  jobId: string;
  /** As last observed; "" before the job exists. */
  jobState: JobState | "";
  /** The run this one replaced (concurrency replace). */
  replacedRunId: string;
  /** Replaced by a newer run: its job is cancelled (idempotent, retried until the job says so). */
  cancelRequested: boolean;
}

export interface PendingTrigger {
  triggerId: string;
  reason: string;
  atMs: number;
}

export interface ScheduleRecord {
  name: string;
  tenant: string;
  spec: ScheduleSpec;
  /** 0 = no cron fire ahead (trigger only, or the expression never fires again). */
  nextFireAtMs: number;
  lastFireAtMs: number;
  /** Newest first. */
  runs: RunRecord[];
  /** Oldest first. */
  pending: PendingTrigger[];
  nextSeq: number;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Triggers queued and not yet started: more is RESOURCE_EXHAUSTED (a webhook storm must not grow the record). */
export const MAX_PENDING_TRIGGERS = 32;

export const scheduleKey = (tenant: string, name: string) => `${tenant}.${name}`;

/** The run's job request id: unique across a delete and re-create of the same name (run ids restart at 1). */
export const runRequestId = (rec: Pick<ScheduleRecord, "createdAtMs">, runId: string) =>
  `sched-${rec.createdAtMs.toString(36)}-${runId}`;
