/** JobService over gRPC: converts protobuf ↔ domain, validates at the edge, maps errors; no logic of its own. */
import type * as pb from "@capa/api";
import { actingTenant } from "@capa/auth";
import { jobStateToPb, logStreamToPb } from "@capa/bus";
import {
  API_VERSION,
  CAPA_VERSION,
  isFinalJobState,
  type Job,
  type JobSpec,
  throwIfViolations,
  ValidationError,
} from "@capa/domain";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { DEFAULT_LIST_LIMIT, type JobService, jobIdViolations } from "../jobs/job-service.js";
import { type LogReader, LogsUnavailableError, MAX_FOLLOWED_TASKS } from "../jobs/logs.js";
import type { JobEntry, JobRepo } from "../store/job-repo.js";
import { statesFromPb } from "./convert.js";
import { type KnownGpuModels, specFromWire, tenantOrDefault } from "./edge.js";
import { callerOf } from "./guard.js";
import type { MarketHandlers } from "./market.js";
import { compareKeys, pageByKey } from "./paging.js";
import { publicJobToPb, requireVisible } from "./scope.js";
import { type EdgeContext, failStream, failUnary, unary, writeWithBackpressure } from "./unary.js";

export interface JobHandlerDeps extends EdgeContext {
  jobs: JobService;
  repo: JobRepo;
  logs: LogReader;
  market: MarketHandlers;
  knownGpuModels: KnownGpuModels;
  /** The tenant's operator-set ceilings applied to a spec at admission (priority, default max price). */
  admit?: <S extends Pick<JobSpec, "priority" | "maxPricePerGpuHour">>(tenant: string, spec: S) => S;
}

export function jobHandlers(d: JobHandlerDeps): pb.JobServiceServer {
  return {
    submitJob: unary(d, "SubmitJob", async (req: pb.SubmitJobRequest, call) => {
      // An operator that names no tenant submits for the default tenant (server-side default).
      const tenant = actingTenant(callerOf(call), req.tenant, tenantOrDefault(""));
      const spec = specFromWire(req.spec, d.knownGpuModels);
      const result = await d.jobs.submit({
        requestId: req.requestId,
        tenant,
        spec: spec && d.admit ? d.admit(tenant, spec) : spec,
      });
      return { job: publicJobToPb(result.job), deduplicated: result.deduplicated };
    }),
    getJob: unary(d, "GetJob", async (req: pb.GetJobRequest, call) => ({
      job: publicJobToPb(requireVisible(callerOf(call), await d.jobs.get(req.jobId))),
    })),
    listJobs: unary(d, "ListJobs", async (req: pb.ListJobsRequest, call) => {
      const tenant = actingTenant(callerOf(call), req.tenant, "");
      const { states, violations } = statesFromPb(req.states);
      throwIfViolations(violations);
      const matching = d.jobs.matching({ tenant, states, limit: req.limit });
      const page = pageByKey(matching, {
        pageToken: req.pageToken,
        size: req.limit || DEFAULT_LIST_LIMIT,
        filter: ["jobs", tenant, [...states].sort()],
        key: (j) => [-j.createdAtMs, j.id],
        compare: compareKeys,
      });
      return { jobs: (await d.jobs.jobsOf(page.items)).map(publicJobToPb), nextPageToken: page.nextPageToken };
    }),
    cancelJob: unary(d, "CancelJob", async (req: pb.CancelJobRequest, call) => {
      requireVisible(callerOf(call), await d.jobs.get(req.jobId));
      return { job: publicJobToPb(await d.jobs.cancel(req.jobId, req.reason)) };
    }),
    watchJob: (call) => settled(d, "WatchJob", watchJob(d, call)),
    streamLogs: (call) => settled(d, "StreamLogs", streamLogs(d, call)),
    getVersion: unary(d, "GetVersion", () => ({ version: CAPA_VERSION, apiVersion: API_VERSION })),
    quote: (call, callback) => {
      // The quote is priced for the caller's tenant (or the one an operator names).
      try {
        call.request.tenant = actingTenant(callerOf(call), call.request.tenant, "");
      } catch (err) {
        return failUnary(d, "Quote", callback, err);
      }
      d.market.quote(call, callback);
    },
    listOffers: d.market.listOffers,
  };
}

/** Job state, reason and each task's state: an event is sent whenever this changes. */
function signature(job: Job): string {
  return `${job.state}|${job.reason}|${job.tasks.map((t) => `${t.id}:${t.state}:${t.epoch}`).join(",")}`;
}

/** A streaming handler's promise never rejects unhandled: whatever escapes it is logged, not fatal. */
function settled(d: JobHandlerDeps, method: string, run: Promise<void>): void {
  run.catch((err: unknown) => d.logger.error({ err, method }, "stream handler failed"));
}

async function watchJob(d: JobHandlerDeps, call: ServerWritableStream<pb.WatchJobRequest, pb.JobEvent>): Promise<void> {
  const jobId = call.request.jobId;
  const caller = callerOf(call);
  let ended = false;
  let unsubscribe = () => {};
  // Whichever way the stream ends (final state, client cancel, failure), the job listener goes with it.
  const finish = () => {
    ended = true;
    unsubscribe();
  };
  call.on("cancelled", finish);
  try {
    throwIfViolations(jobIdViolations(jobId));
    // -1: an acknowledged job still only in the intake is sent at revision 0 (JobService.entry).
    let lastRevision = -1;
    let lastSignature = "";
    const send = (entry: JobEntry) => {
      if (ended || call.cancelled || entry.revision <= lastRevision) return;
      requireVisible(caller, entry.job);
      lastRevision = entry.revision;
      const sig = signature(entry.job);
      if (sig === lastSignature) return;
      lastSignature = sig;
      call.write({
        jobId,
        state: jobStateToPb(entry.job.state),
        job: publicJobToPb(entry.job),
        message: entry.job.reason,
        atMs: entry.job.updatedAtMs,
      });
      if (isFinalJobState(entry.job.state)) {
        finish();
        call.end();
      }
    };
    // Subscribe before reading, so no change between the read and the subscription is missed. A listener runs
    // inside the job repo's update path: its failure ends this stream, never the repo's caller.
    unsubscribe = d.repo.subscribe(jobId, (entry) => {
      try {
        send(entry);
      } catch (err) {
        if (ended) return;
        finish();
        failStream(d, "WatchJob", call, err);
      }
    });
    if (call.cancelled || ended) {
      finish();
      return;
    }
    send(await d.jobs.entry(jobId));
    d.metrics.rpcs.inc({ method: "WatchJob", code: "OK" });
  } catch (err) {
    const alreadyEnded = ended;
    finish();
    if (!alreadyEnded) failStream(d, "WatchJob", call, err);
  }
}

async function streamLogs(
  d: JobHandlerDeps,
  call: ServerWritableStream<pb.StreamLogsRequest, pb.LogLine>,
): Promise<void> {
  const { jobId, taskId } = call.request;
  let follow = call.request.follow;
  // The client going away stops every consumer (LogReader deletes them before it settles).
  const abort = new AbortController();
  call.on("cancelled", () => abort.abort());
  if (call.cancelled) abort.abort();
  try {
    throwIfViolations(jobIdViolations(jobId));
    // JobService.entry: a job acknowledged from the intake and not written yet is answered like a written job
    // without logs (its tasks have none yet), not NOT_FOUND; with `follow` the reader waits for its record.
    const entry = await d.jobs.entry(jobId);
    const job = requireVisible(callerOf(call), entry.job);
    // Cancelled before it was written: it will never run, so there is nothing to wait for.
    if (entry.revision === 0 && isFinalJobState(job.state)) follow = false;
    if (taskId !== "" && !job.tasks.some((t) => t.id === taskId))
      throw new ValidationError([{ field: "task_id", message: `is not a task of job ${jobId}` }]);
    const taskIds = taskId !== "" ? [taskId] : job.tasks.map((t) => t.id);
    if (taskIds.length > MAX_FOLLOWED_TASKS)
      throw new ValidationError([
        { field: "task_id", message: `is required for jobs with more than ${MAX_FOLLOWED_TASKS} tasks` },
      ]);
    await d.logs.stream(
      { jobId, taskIds, follow },
      {
        get closed() {
          return call.cancelled;
        },
        write: (chunk) =>
          writeWithBackpressure(call, {
            jobId,
            taskId: chunk.taskId,
            stream: logStreamToPb(chunk.stream),
            data: Buffer.from(chunk.data),
            seq: chunk.seq,
            atMs: chunk.atMs,
          }),
      },
      abort.signal,
    );
    d.metrics.rpcs.inc({ method: "StreamLogs", code: "OK" });
    if (!call.cancelled) call.end();
  } catch (err) {
    if (err instanceof LogsUnavailableError) d.logger.warn({ err, jobId }, "StreamLogs interrupted");
    failStream(d, "StreamLogs", call, err);
  }
}
