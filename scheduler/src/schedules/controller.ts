/**
 * The schedule controller (leader only): for every schedule, one pure round (engine.ts) → commit the record with
 * CAS (a conflict skips this schedule until the next tick) → side effects, each idempotent: a run's job is
 * submitted under the run id as request id (a crash between record and submit is healed by the resubmit), its
 * job id written back with CAS, a replaced run's job cancelled. A refused submission (budget, validation, tenant
 * policy) is final for that run: recorded as failed with the reason, not retried every tick.
 */
import type { TypedKv } from "@capa/bus";
import { CapaError, ConflictError, type JobSpec, type JobState } from "@capa/domain";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import { ChangedList } from "../store/changed-list.js";
import type { JobRepo } from "../store/job-repo.js";
import { scheduleRound } from "./engine.js";
import { type RunRecord, runRequestId, type ScheduleRecord, scheduleKey } from "./model.js";

export interface ScheduleControllerDeps {
  schedules: TypedKv<ScheduleRecord>;
  jobs: JobService;
  repo: JobRepo;
  logger: Logger;
  now: () => number;
  /** Tenant policy on the run's job (priority ceiling, default price cap), as SubmitJob applies it. */
  admit: (tenant: string, spec: JobSpec) => JobSpec;
}

/** Errors that will not go away by retrying the same submission. */
const FINAL_CODES = new Set(["INVALID_ARGUMENT", "FAILED_PRECONDITION", "ALREADY_EXISTS", "PERMISSION_DENIED"]);

export class ScheduleController {
  /** The bucket's entries, listed again only when it changed (a tick of an unchanged bucket: one stream info). */
  private readonly listing: ChangedList<ScheduleRecord>;

  constructor(private readonly d: ScheduleControllerDeps) {
    this.listing = new ChangedList(d.schedules);
  }

  async tick(): Promise<void> {
    for (const entry of await this.listing.list()) {
      try {
        await this.reconcileOne(entry.value, entry.revision);
      } catch (err) {
        if (!(err instanceof ConflictError))
          this.d.logger.warn({ err, schedule: entry.key }, "schedule reconcile failed; retried next tick");
      }
    }
  }

  private jobState = (jobId: string): JobState | undefined => this.d.repo.get(jobId)?.job.state;

  private async reconcileOne(rec: ScheduleRecord, kvRevision: number): Promise<void> {
    const nowMs = this.d.now();
    const { next, submit, cancel } = scheduleRound(rec, nowMs, this.jobState);
    const key = scheduleKey(rec.tenant, rec.name);
    if (JSON.stringify(next) !== JSON.stringify(rec)) {
      next.updatedAtMs = nowMs;
      await this.d.schedules.update(key, next, kvRevision);
    }
    for (const run of submit) await this.start(next, run);
    for (const run of cancel)
      await this.d.jobs
        .cancel(run.jobId, `schedule ${rec.name}: replaced by a newer run (concurrency replace)`)
        .catch((err) => this.d.logger.warn({ err, run: run.runId }, "could not cancel a replaced run; retried"));
  }

  private runSpec(rec: ScheduleRecord, run: RunRecord): JobSpec {
    const job = structuredClone(rec.spec.job);
    job.name ||= rec.name;
    // The run knows what started it (a retraining job may read why it runs).
    job.template.env = {
      ...job.template.env,
      CAPA_SCHEDULE: rec.name,
      CAPA_SCHEDULE_RUN: run.runId,
      CAPA_SCHEDULE_TRIGGER: run.triggerId,
    };
    return this.d.admit(rec.tenant, job);
  }

  private async start(rec: ScheduleRecord, run: RunRecord): Promise<void> {
    let update: Partial<RunRecord>;
    try {
      const { job } = await this.d.jobs.submit({
        requestId: runRequestId(rec, run.runId),
        tenant: rec.tenant,
        spec: this.runSpec(rec, run),
      });
      update = { jobId: job.id, jobState: job.state };
      this.d.logger.info({ schedule: rec.name, run: run.runId, job: job.id, cause: run.cause }, "schedule run started");
    } catch (err) {
      if (!(err instanceof CapaError && FINAL_CODES.has(err.code))) throw err;
      update = { outcome: "failed", reason: `${run.reason}; job refused: ${err.message}` };
      this.d.logger.warn({ err, schedule: rec.name, run: run.runId }, "schedule run refused");
    }
    await this.d.schedules.mutate(scheduleKey(rec.tenant, rec.name), (cur) => {
      const r = cur?.runs.find((x) => x.runId === run.runId);
      if (!cur || !r || r.jobId !== "" || r.outcome !== "started") return undefined;
      Object.assign(r, update);
      return cur;
    });
  }
}
