/** ScheduleService over gRPC: protobuf ↔ domain at this edge only; the logic is ScheduleApi's. */
import * as pb from "@capa/api";
import { jobStateToPb, scheduleSpecToPb } from "@capa/bus";
import {
  type ConcurrencyPolicy,
  type JobSpec,
  SCHEDULE_LIMITS,
  type ScheduleSpec,
  throwIfViolations,
} from "@capa/domain";
import { type KnownGpuModels, specFromWire } from "../grpc/edge.js";
import { compareKeys, pageByKey, pageSize } from "../grpc/paging.js";
import { SECRET_MASK } from "../grpc/scope.js";
import { type EdgeContext, unary } from "../grpc/unary.js";
import type { RunCause, RunOutcome, RunRecord, ScheduleRecord } from "./model.js";
import type { ScheduleApi } from "./schedule-api.js";

const POLICY_FROM_PB = new Map<pb.ConcurrencyPolicy, ConcurrencyPolicy>([
  [pb.ConcurrencyPolicy.CONCURRENCY_POLICY_UNSPECIFIED, "forbid"],
  [pb.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID, "forbid"],
  [pb.ConcurrencyPolicy.CONCURRENCY_POLICY_REPLACE, "replace"],
  [pb.ConcurrencyPolicy.CONCURRENCY_POLICY_ALLOW, "allow"],
]);
const CAUSE_TO_PB: Record<RunCause, pb.ScheduleRunCause> = {
  cron: pb.ScheduleRunCause.SCHEDULE_RUN_CAUSE_CRON,
  trigger: pb.ScheduleRunCause.SCHEDULE_RUN_CAUSE_TRIGGER,
};
const OUTCOME_TO_PB: Record<RunOutcome, pb.ScheduleRunOutcome> = {
  started: pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_STARTED,
  skipped: pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_SKIPPED,
  failed: pb.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_FAILED,
};

/** The wire spec made whole (defaults as the proto documents them); undefined enum values fail validation. */
export function scheduleSpecFromPb(s: pb.ScheduleSpec | undefined, known: KnownGpuModels): ScheduleSpec | undefined {
  if (!s) return undefined;
  const job = specFromWire(s.job, known, "spec.job");
  if (!job) throwIfViolations([{ field: "spec.job", message: "is required" }]);
  return {
    name: s.name,
    cron: s.cron.trim(),
    timezone: s.timezone,
    concurrency: POLICY_FROM_PB.get(s.concurrencyPolicy) ?? ("unknown" as ConcurrencyPolicy),
    historyLimit: s.historyLimit || SCHEDULE_LIMITS.defaultHistory,
    suspend: s.suspend,
    job: job as JobSpec,
  };
}

/** The spec as answers show it: secret env values masked as in every job the API returns. */
export function publicScheduleSpecToPb(s: ScheduleSpec): pb.ScheduleSpec {
  const out = scheduleSpecToPb(s);
  const env = out.job?.template?.env;
  if (env)
    for (const name of s.job.template.secretEnvNames ?? []) if (Object.hasOwn(env, name)) env[name] = SECRET_MASK;
  return out;
}

function runToPb(r: RunRecord): pb.ScheduleRun {
  return {
    runId: r.runId,
    cause: CAUSE_TO_PB[r.cause],
    triggerId: r.triggerId,
    reason: r.reason,
    dueAtMs: r.dueAtMs,
    startedAtMs: r.startedAtMs,
    outcome: OUTCOME_TO_PB[r.outcome],
    jobId: r.jobId,
    jobState: r.jobState ? jobStateToPb(r.jobState) : pb.JobState.JOB_STATE_UNSPECIFIED,
    replacedRunId: r.replacedRunId,
  };
}

export function scheduleToPb(r: ScheduleRecord): pb.Schedule {
  return {
    name: r.name,
    tenant: r.tenant,
    spec: publicScheduleSpecToPb(r.spec),
    nextFireAtMs: r.spec.suspend ? 0 : r.nextFireAtMs,
    lastFireAtMs: r.lastFireAtMs,
    runs: r.runs.map(runToPb),
    pendingTriggers: r.pending.length,
    createdAtMs: r.createdAtMs,
    updatedAtMs: r.updatedAtMs,
  };
}

export interface ScheduleEdgeDeps {
  edge: EdgeContext;
  api: ScheduleApi;
  knownGpuModels: KnownGpuModels;
  admit: (tenant: string, spec: JobSpec) => JobSpec;
}

export function scheduleHandlers(d: ScheduleEdgeDeps): pb.ScheduleServiceServer {
  const ctx = d.edge;
  return {
    applySchedule: unary(ctx, "ApplySchedule", async (req: pb.ApplyScheduleRequest) => {
      const spec = scheduleSpecFromPb(req.spec, d.knownGpuModels);
      // The tenant's ceilings are checked now, so a schedule that could never start a run is refused at once.
      if (spec) d.admit(req.tenant, spec.job);
      const { record, changed } = await d.api.apply(req.tenant, spec);
      return { schedule: scheduleToPb(record), changed };
    }),
    getSchedule: unary(ctx, "GetSchedule", async (req: pb.GetScheduleRequest) => ({
      schedule: scheduleToPb(await d.api.get(req.tenant, req.name)),
    })),
    listSchedules: unary(ctx, "ListSchedules", async (req: pb.ListSchedulesRequest) => {
      const all = (await d.api.list(req.tenant)).map(scheduleToPb);
      const page = pageByKey(all, {
        pageToken: req.pageToken,
        size: pageSize(req.limit),
        filter: ["schedules", req.tenant],
        key: (s) => [s.name],
        compare: compareKeys,
      });
      return { schedules: page.items, nextPageToken: page.nextPageToken };
    }),
    deleteSchedule: unary(ctx, "DeleteSchedule", async (req: pb.DeleteScheduleRequest) => {
      await d.api.delete(req.tenant, req.name);
      return {};
    }),
    triggerSchedule: unary(ctx, "TriggerSchedule", (req: pb.TriggerScheduleRequest) =>
      d.api.trigger(req.tenant, req.name, { triggerId: req.triggerId, reason: req.reason }),
    ),
  };
}
