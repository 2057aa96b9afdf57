/**
 * The tenant operations in domain terms (the gRPC layer converts protobuf to these inputs and back):
 * submit (validate → dedupe by request id → durable CAS create → evaluate), get, list, cancel.
 * Submission order: `capa_requests/<tenant>.<hash>` is created first (CAS), then the job, so a retry always
 * finds the job id; a crash between the two is healed by the retry, which creates the job under the recorded id.
 * When admission refuses the job (over a budget), the request record this call created is deleted again (CAS on
 * its revision), so the request id stays free: a retry with a changed spec is admitted afresh instead of being
 * refused as ALREADY_EXISTS for a job that was never created.
 */
import type { TypedKv } from "@capa/bus";
import {
  ConflictError,
  DEFAULT_KILL_GRACE_SECONDS,
  type FieldViolation,
  isFinalJobState,
  type Job,
  type JobKind,
  type JobSpec,
  type JobState,
  jobSpecViolations,
  newTask,
  requestIdViolations,
  tenantViolations,
  throwIfViolations,
} from "@capa/domain";
import { BudgetExceededError } from "@capa/market";
import type { AdmissionApi } from "../market/admission.js";
import type { JobEntry, JobRepo, JobSummary } from "../store/job-repo.js";
import type { RequestRecord } from "../store/records.js";
import { newJobId, requestKey, specDigest } from "../util/ids.js";
import { AlreadyExistsError } from "./errors.js";
import { settle } from "./settle.js";

export interface SubmitInput {
  requestId: string;
  tenant: string;
  /** `kind` undefined = UNSPECIFIED or unknown on the wire; `undefined` spec = missing. */
  spec: (Omit<JobSpec, "kind"> & { kind: JobKind | undefined }) | undefined;
}

export interface SubmitResult {
  job: Job;
  deduplicated: boolean;
}

export interface ListInput {
  tenant: string;
  states: JobState[];
  limit: number;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function jobIdViolations(jobId: string, field = "job_id"): FieldViolation[] {
  if (jobId === "") return [{ field, message: "must not be empty" }];
  if (!JOB_ID.test(jobId)) return [{ field, message: "must be a job id (letters, digits, '_' or '-', at most 64)" }];
  return [];
}

export class JobService {
  constructor(
    private readonly jobs: JobRepo,
    private readonly requests: TypedKv<RequestRecord>,
    private readonly now: () => number,
    private readonly evaluate: (jobId: string, reason: string) => void,
    private readonly onSubmitted: () => void = () => {},
    /** Budget admission: reserves the job's expected cost before the job is written. */
    private readonly admission?: AdmissionApi,
  ) {}

  async submit(input: SubmitInput): Promise<SubmitResult> {
    const violations = [...tenantViolations(input.tenant), ...requestIdViolations(input.requestId)];
    if (!input.spec) violations.push({ field: "spec", message: "is required" });
    else violations.push(...jobSpecViolations(input.spec as JobSpec));
    throwIfViolations(violations);
    const spec = normalize(input.spec as JobSpec);
    if (input.requestId === "")
      return { job: (await this.createJob(newJobId(), input, spec)).job, deduplicated: false };

    const key = requestKey(input.tenant, input.requestId);
    const digest = specDigest(spec);
    // Create first (one round trip for a new request); only a conflict reads the record a first attempt left.
    for (let attempt = 0; attempt < 10; attempt++) {
      const jobId = newJobId();
      const record: RequestRecord = {
        jobId,
        tenant: input.tenant,
        requestId: input.requestId,
        specDigest: digest,
        createdAtMs: this.now(),
      };
      let revision: number | undefined;
      try {
        revision = await this.requests.create(key, record);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      if (revision !== undefined) {
        try {
          return { job: (await this.createJob(jobId, input, spec, record.createdAtMs)).job, deduplicated: false };
        } catch (err) {
          if (err instanceof BudgetExceededError) await this.forgetRequest(key, revision, record);
          throw err;
        }
      }
      const existing = await this.requests.get(key);
      if (!existing) continue; // deleted again meanwhile (a refused first attempt freed it): create afresh
      if (existing.value.specDigest !== digest)
        throw new AlreadyExistsError("request_id: already used for a different job spec");
      const job = await this.jobs.fetch(existing.value.jobId);
      if (job) return { job: job.job, deduplicated: true };
      try {
        // The first submission stopped between the request record and the job: finish it now.
        const created = await this.createJob(existing.value.jobId, input, spec, existing.value.createdAtMs);
        return { job: created.job, deduplicated: true };
      } catch (err) {
        // Refused: the job never existed under this record; free the request id as for a first refusal.
        if (err instanceof BudgetExceededError) await this.forgetRequest(key, existing.revision, existing.value);
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new ConflictError("request_id: too many concurrent submissions; retry");
  }

  async get(jobId: string): Promise<Job> {
    throwIfViolations(jobIdViolations(jobId));
    return (await this.jobs.require(jobId)).job;
  }

  /** The first page of the listing (jobs read from memory, else KV). */
  async list(input: ListInput): Promise<Job[]> {
    const page = this.matching(input).slice(0, input.limit || DEFAULT_LIST_LIMIT);
    return this.jobsOf(page);
  }

  /** The jobs of `summaries`, in order (memory, else KV; one purged meanwhile is left out). */
  async jobsOf(summaries: readonly JobSummary[]): Promise<Job[]> {
    return (await this.jobs.fetchMany(summaries.map((s) => s.id))).map((e) => e.job);
  }

  /**
   * Every job the listing matches, newest first (ties by id), as summaries: the gRPC edge pages through them and
   * reads only the page's jobs (retired jobs are not all held in memory).
   */
  matching(input: ListInput): JobSummary[] {
    const violations: FieldViolation[] = [];
    if (input.tenant !== "") violations.push(...tenantViolations(input.tenant));
    if (!Number.isInteger(input.limit) || input.limit < 0 || input.limit > MAX_LIST_LIMIT)
      violations.push({ field: "limit", message: `must be an integer in 0..${MAX_LIST_LIMIT}` });
    throwIfViolations(violations);
    const states = new Set(input.states);
    const out: JobSummary[] = [];
    for (const j of this.jobs.allSummaries())
      if ((input.tenant === "" || j.tenant === input.tenant) && (states.size === 0 || states.has(j.state))) out.push(j);
    return out.sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  /** Idempotent: a final job is returned unchanged. Running tasks are stopped by the leader's next evaluation. */
  async cancel(jobId: string, reason: string): Promise<Job> {
    const violations = jobIdViolations(jobId);
    if (reason.length > 512) violations.push({ field: "reason", message: "must be at most 512 characters" });
    throwIfViolations(violations);
    await this.jobs.require(jobId);
    const entry = await this.jobs.mutate(jobId, (job) => {
      if (isFinalJobState(job.state) || job.cancelRequested) return undefined;
      job.cancelRequested = true;
      job.reason = reason ? `cancelled: ${reason}` : "cancelled by request";
      const nowMs = this.now();
      for (const t of job.tasks)
        if (t.state === "pending") {
          t.state = "cancelled";
          t.message = "cancelled before placement";
          t.finishedAtMs = nowMs;
        }
      return settle(job, nowMs);
    });
    this.evaluate(jobId, "cancel requested");
    return entry!.job;
  }

  /**
   * Deletes the request record this call created, unless it changed since (CAS on its revision). Should a
   * concurrent retry have written the job meanwhile (it read the record, and admission let it in), the record
   * is put back, so that job stays deduplicated. Best effort: the refusal reaches the caller either way.
   */
  private async forgetRequest(key: string, revision: number, record: RequestRecord): Promise<void> {
    try {
      await this.requests.kv.delete(key, { previousSeq: revision });
      if (await this.jobs.fetch(record.jobId)) await this.requests.create(key, record).catch(() => undefined);
    } catch {
      // changed since (a concurrent retry owns it now) or the store is unavailable: keep it
    }
  }

  private async createJob(id: string, input: SubmitInput, spec: JobSpec, createdAtMs = this.now()): Promise<JobEntry> {
    const nowMs = this.now();
    const job: Job = {
      id,
      tenant: input.tenant,
      requestId: input.requestId,
      spec,
      state: "pending",
      reason: "waiting for placement",
      tasks: Array.from({ length: spec.replicas }, (_, i) => newTask(id, i)),
      createdAtMs,
      updatedAtMs: nowMs,
      finishedAtMs: 0,
      cancelRequested: false,
      spent: 0,
      reserved: 0,
    };
    // Reserve first (refused → FAILED_PRECONDITION, nothing written); undo it if the job cannot be written,
    // unless a concurrent retry wrote the same job, which then owns the reservation.
    if (this.admission) job.reserved = await this.admission.reserve(input.tenant, id, spec);
    let entry: JobEntry;
    try {
      entry = await this.jobs.create(job);
    } catch (err) {
      if (this.admission && !(await this.jobs.fetch(id).catch(() => undefined)))
        await this.admission.release(input.tenant, id).catch(() => undefined);
      throw err;
    }
    this.onSubmitted();
    this.evaluate(id, "submitted");
    return entry;
  }
}

/** Fills wire zero values that mean "default". */
function normalize(spec: JobSpec): JobSpec {
  const template = { ...spec.template };
  if (template.killGraceSeconds === 0) template.killGraceSeconds = DEFAULT_KILL_GRACE_SECONDS;
  return { ...spec, template };
}
