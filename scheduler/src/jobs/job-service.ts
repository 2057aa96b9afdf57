/**
 * The tenant operations in domain terms (the gRPC layer converts protobuf to these inputs and back):
 * submit (validate → dedupe by request id → durable CAS create; the job repo's change listener asks for its evaluation),
 * get, list, cancel.
 * Submission order: the request id is claimed first (`capa_requests/<tenant>.<hash>`, CAS create, in each of the
 * request registers: scheduler/src/requests), then the job, so a retry always finds the job id; a crash between
 * the two is healed by the retry, which creates the job under the recorded id. When admission refuses the job
 * (over a budget), the request record this call claimed is deleted again (CAS on its revisions), so the request
 * id stays free: a retry with a changed spec is admitted afresh instead of being
 * refused as ALREADY_EXISTS for a job that was never created.
 */
import {
  CapaError,
  ConflictError,
  DEFAULT_KILL_GRACE_SECONDS,
  type FieldViolation,
  type Job,
  type JobKind,
  type JobSpec,
  type JobState,
  jobSpecViolations,
  newTask,
  requestIdViolations,
  tenantViolations,
  throwIfViolations,
  UnavailableError,
} from "@capa/domain";
import { BudgetExceededError } from "@capa/market";
import { SubmitAttempt } from "../intake/attempt.js";
import type { CancelIntent, PendingSubmission } from "../intake/envelope.js";
import type { AdmissionApi } from "../market/admission.js";
import type { Claim, RequestClaims } from "../requests/claims.js";
import { type JobEntry, type JobRepo, type JobSummary, summaryOf } from "../store/job-repo.js";
import type { RequestRecord } from "../store/records.js";
import { newJobId, requestKey, specDigest } from "../util/ids.js";
import { cancelledCopy, MAX_CANCEL_REASON, requestCancel } from "./cancel.js";
import { AlreadyExistsError } from "./errors.js";

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

/**
 * The submit fallback (scheduler/src/intake): when set, a submission whose normal path is stuck on the store is
 * made durable in the intake instead and answered from there (see `decideSubmit`).
 */
export interface SubmitFallback {
  submit(
    normal: Promise<SubmitResult>,
    attempt: SubmitAttempt,
    pending: () => PendingSubmission,
    msgId: string,
  ): Promise<SubmitResult>;
  /** An acknowledged submission not materialised yet, as the RPCs answer it (its first state, or cancelled). */
  pendingJob(jobId: string): Job | undefined;
  /** Every such job (ListJobs lists them among the written ones). */
  pendingJobs(): Iterable<Job>;
  /**
   * Cancels such a job durably (a cancel intent in the intake) and answers it cancelled; undefined when it is
   * not held any more (its record is written: cancel that).
   */
  cancelPending(jobId: string, reason: string, nowMs: number): Promise<Job | undefined>;
}

/**
 * A cancel of a job acknowledged from the intake that this replica neither holds nor finds written (its entry
 * dropped past the pending index's cap, the record not readable yet): UNAVAILABLE, retry.
 */
export class JobBeingWrittenError extends UnavailableError {}

export type MaterialiseOutcome =
  | "created"
  | "created beside another job of its request id"
  | "created cancelled"
  | "existed"
  | "refused";

/** What the materialiser did with a cancel intent. */
export type CancelIntentOutcome = "applied" | "unchanged" | "created cancelled" | "other tenant" | "no such job";

export class JobService {
  private fallback: SubmitFallback | undefined;

  constructor(
    private readonly jobs: JobRepo,
    private readonly claims: RequestClaims,
    private readonly now: () => number,
    /** Asks for an evaluation (after a cancel request; new jobs: see createJob). */
    private readonly evaluate: (jobId: string, reason: string) => void,
    private readonly onSubmitted: () => void = () => {},
    /** Budget admission: reserves the job's expected cost before the job is written. */
    private readonly admission?: AdmissionApi,
  ) {}

  /** Turns the submit fallback on (the intake room, once its streams are open). */
  useFallback(fallback: SubmitFallback): void {
    this.fallback = fallback;
  }

  async submit(input: SubmitInput): Promise<SubmitResult> {
    const violations = [...tenantViolations(input.tenant), ...requestIdViolations(input.requestId)];
    if (!input.spec) violations.push({ field: "spec", message: "is required" });
    else violations.push(...jobSpecViolations(input.spec as JobSpec));
    throwIfViolations(violations);
    const spec = normalize(input.spec as JobSpec);
    const attempt = new SubmitAttempt();
    // Each hashed once per submission (a SHA-256 each, the digest over the spec's canonical JSON), and only where
    // used: the request record (a request id) and the fallback's pending submission both need them.
    const key = input.requestId === "" ? undefined : requestKey(input.tenant, input.requestId);
    const digest = key !== undefined || this.fallback ? specDigest(spec) : "";
    const normal = this.submitNormally(input, spec, attempt, digest, key);
    if (!this.fallback) return normal;
    return this.fallback.submit(
      normal,
      attempt,
      () => ({ job: this.newJob(attempt.jobId!, input, spec, attempt.createdAtMs), specDigest: digest }),
      key ?? attempt.jobId!,
    );
  }

  private async submitNormally(
    input: SubmitInput,
    spec: JobSpec,
    attempt: SubmitAttempt,
    digest: string,
    key: string | undefined,
  ): Promise<SubmitResult> {
    if (key === undefined) {
      const jobId = newJobId();
      const createdAtMs = this.now();
      attempt.writing(jobId, createdAtMs);
      return {
        job: (await this.createJob(jobId, input, spec, createdAtMs, () => !attempt.abandoned)).job,
        deduplicated: false,
      };
    }

    // Claim first (one round trip per register for a new request); only a conflict reads the record there.
    for (let i = 0; i < 10; i++) {
      const jobId = newJobId();
      const record: RequestRecord = {
        jobId,
        tenant: input.tenant,
        requestId: input.requestId,
        specDigest: digest,
        createdAtMs: this.now(),
      };
      // Until the claim is decided the id is unknown: a concurrent duplicate may win the request id, and falling
      // back under this id would acknowledge a second job for one request id.
      const claim = await this.claims.claim(key, record);
      if (claim.mine) {
        attempt.writing(jobId, record.createdAtMs);
        try {
          const created = await this.createJob(jobId, input, spec, record.createdAtMs, () => !attempt.abandoned);
          return { job: created.job, deduplicated: false };
        } catch (err) {
          if (err instanceof BudgetExceededError && !attempt.abandoned) await this.forgetRequest(key, claim);
          throw err;
        }
      }
      const existing = claim.record;
      if (existing.specDigest !== digest)
        throw new AlreadyExistsError("request_id: already used for a different job spec");
      attempt.writing(existing.jobId, existing.createdAtMs, true);
      const job = await this.jobs.fetch(existing.jobId);
      if (job) return { job: job.job, deduplicated: true };
      try {
        // The first submission stopped between the request record and the job: finish it now.
        const created = await this.createJob(
          existing.jobId,
          input,
          spec,
          existing.createdAtMs,
          () => !attempt.abandoned,
        );
        return { job: created.job, deduplicated: true };
      } catch (err) {
        // Refused: the job never existed under this record; free the request id as for a first refusal.
        if (err instanceof BudgetExceededError && !attempt.abandoned) await this.forgetRequest(key, claim);
        if (!(err instanceof ConflictError)) throw err;
        attempt.unknown();
      }
    }
    throw new ConflictError("request_id: too many concurrent submissions; retry");
  }

  /**
   * Completes a pending submission from the intake, idempotently, with the normal path's own steps: the request
   * record is created (or found), then the job under the acknowledged id (CAS create; an existing job means done),
   * admission included. Admission refusing it now — after the tenant was answered — makes the job final (FAILED,
   * with the refusal as its reason), so GetJob/WatchJob show why; it is never dropped. A request record that
   * names another job (a concurrent duplicate that took the normal path) does not stop it: the acknowledged job
   * id must exist. With `cancel` (a cancel intent accepted before it was written) the job is written cancelled:
   * never placed, nothing reserved (whatever a stalled normal path reserved under its id is released when the
   * settler settles the final job).
   */
  async materialise(p: PendingSubmission, cancel?: CancelIntent): Promise<MaterialiseOutcome> {
    const { job } = p;
    if (await this.jobs.fetch(job.id)) return "existed";
    let beside = false;
    if (job.requestId !== "") {
      const key = requestKey(job.tenant, job.requestId);
      const record: RequestRecord = {
        jobId: job.id,
        tenant: job.tenant,
        requestId: job.requestId,
        specDigest: p.specDigest,
        createdAtMs: job.createdAtMs,
      };
      beside = (await this.claims.claim(key, record)).record.jobId !== job.id;
    }
    const input: SubmitInput = { tenant: job.tenant, requestId: job.requestId, spec: job.spec };
    if (cancel && cancel.tenant === job.tenant) {
      try {
        await this.jobs.create(cancelledCopy(this.newJob(job.id, input, job.spec, job.createdAtMs), cancel));
        return "created cancelled";
      } catch (err) {
        if (err instanceof ConflictError) return "existed";
        throw err;
      }
    }
    try {
      // Never undone: a failed write is retried under the same id (the reserve again a no-op) until the job exists.
      await this.createJob(job.id, input, job.spec, job.createdAtMs, () => false);
      return beside ? "created beside another job of its request id" : "created";
    } catch (err) {
      if (err instanceof ConflictError) return "existed";
      // Store trouble is retried by the caller; any other answer of capa's (over budget above all) is final.
      if (!(err instanceof CapaError) || err instanceof UnavailableError) throw err;
      const refused = this.newJob(job.id, input, job.spec, job.createdAtMs);
      const nowMs = this.now();
      refused.state = "failed";
      refused.reason = `not admitted after the submission was accepted: ${err.message}`;
      refused.finishedAtMs = nowMs;
      for (const t of refused.tasks) {
        t.state = "cancelled";
        t.message = "not admitted";
        t.finishedAtMs = nowMs;
      }
      try {
        await this.jobs.create(refused);
      } catch (createErr) {
        if (createErr instanceof ConflictError) return "existed";
        throw createErr;
      }
      // The final job is written, so no late write of the stalled normal path can create it any more: whatever
      // that path reserved under this id (its reserve may have passed before this one was refused) goes now.
      await this.admission?.release(job.tenant, job.id).catch(() => undefined);
      return "refused";
    }
  }

  async get(jobId: string): Promise<Job> {
    return (await this.entry(jobId)).job;
  }

  /**
   * The job's entry, or — for an acknowledged submission still only in the intake — its first state at revision 0
   * (GetJob and WatchJob answer it; the materialised job replaces it). NOT_FOUND otherwise.
   */
  async entry(jobId: string): Promise<JobEntry> {
    throwIfViolations(jobIdViolations(jobId));
    // Memory first; then the intake's index before the store: the job's bucket may be the one without a leader
    // (a store read would fail), and an indexed job is one this replica has not seen written yet.
    const held = this.jobs.get(jobId);
    if (held) return held;
    const pending = this.fallback?.pendingJob(jobId);
    if (pending) return { job: pending, revision: 0 };
    return this.jobs.require(jobId);
  }

  /** The first page of the listing (jobs read from memory, else KV). */
  async list(input: ListInput): Promise<Job[]> {
    const page = this.matching(input).slice(0, input.limit || DEFAULT_LIST_LIMIT);
    return this.jobsOf(page);
  }

  /**
   * The jobs of `summaries`, in order (memory, then the intake's index, else KV — as `entry` reads one; one
   * purged meanwhile is left out).
   */
  async jobsOf(summaries: readonly JobSummary[]): Promise<Job[]> {
    const jobs = await Promise.all(
      summaries.map(
        async (s) => this.jobs.get(s.id)?.job ?? this.fallback?.pendingJob(s.id) ?? (await this.jobs.fetch(s.id))?.job,
      ),
    );
    return jobs.filter((j): j is Job => j !== undefined);
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
    const wanted = (j: { tenant: string; state: JobState }) =>
      (input.tenant === "" || j.tenant === input.tenant) && (states.size === 0 || states.has(j.state));
    const out: JobSummary[] = [];
    for (const j of this.jobs.allSummaries()) if (wanted(j)) out.push(j);
    // Acknowledged jobs only in the intake, by the same filter and order. Their sort key (created time, id) is
    // the written job's too, so a job written between two pages keeps its place: never listed twice or skipped.
    for (const j of this.fallback?.pendingJobs() ?? [])
      if (!this.jobs.summary(j.id) && wanted(j)) out.push(summaryOf({ job: j, revision: 0 })); // 0: not written
    return out.sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  /**
   * Idempotent: a final job is returned unchanged. Running tasks are stopped by the leader's next evaluation.
   * A job acknowledged from the intake and not written yet is cancelled with a durable cancel intent there (the
   * materialiser writes it cancelled) and answered cancelled.
   */
  async cancel(jobId: string, reason: string): Promise<Job> {
    const violations = jobIdViolations(jobId);
    if (reason.length > MAX_CANCEL_REASON)
      violations.push({ field: "reason", message: `must be at most ${MAX_CANCEL_REASON} characters` });
    throwIfViolations(violations);
    if ((await this.entry(jobId)).revision === 0) {
      const pending = await this.fallback?.cancelPending(jobId, reason, this.now());
      if (pending) return pending;
    }
    const entry = await this.cancelRecord(jobId, reason);
    if (!entry)
      throw new JobBeingWrittenError(`job ${jobId} is not readable yet (accepted, still being written); retry`);
    return entry.job;
  }

  /**
   * The materialiser's half of a cancel intent: the job's record cancelled (CAS), or — when the submission is
   * still not written (its copy in the other intake stream, not reached yet) — the job written cancelled from
   * `submission`. An intent naming another tenant than the job's is ignored: it never cancels another tenant's job.
   */
  async applyCancelIntent(intent: CancelIntent, submission?: PendingSubmission): Promise<CancelIntentOutcome> {
    const written = await this.jobs.fetch(intent.jobId);
    if (!written) {
      if (!submission || submission.job.id !== intent.jobId) return "no such job";
      if (submission.job.tenant !== intent.tenant) return "other tenant";
      const outcome = await this.materialise(submission, intent);
      // Written by someone else in between: cancel that record.
      if (outcome !== "existed") return "created cancelled";
      return this.applyCancelIntent(intent);
    }
    if (written.job.tenant !== intent.tenant) return "other tenant";
    const before = written.revision;
    const after = await this.cancelRecord(intent.jobId, intent.reason);
    return after && after.revision !== before ? "applied" : "unchanged";
  }

  /** The record's cancel (CAS mutate); undefined when there is no record. */
  private async cancelRecord(jobId: string, reason: string): Promise<JobEntry | undefined> {
    const entry = await this.jobs.mutate(jobId, (job) => requestCancel(job, reason, this.now()));
    if (entry) this.evaluate(jobId, "cancel requested");
    return entry;
  }

  /**
   * Deletes the request record this call created, unless it changed since (CAS on its revision). Should a
   * concurrent retry have written the job meanwhile (it read the record, and admission let it in), the record
   * is put back, so that job stays deduplicated. Best effort: the refusal reaches the caller either way.
   */
  private async forgetRequest(key: string, claim: Claim): Promise<void> {
    try {
      await this.claims.forget(key, claim);
      if (await this.jobs.fetch(claim.record.jobId)) await this.claims.claim(key, claim.record).catch(() => undefined);
    } catch {
      // the store is unavailable: keep it
    }
  }

  /** The job as a submission first writes it. */
  private newJob(id: string, input: SubmitInput, spec: JobSpec, createdAtMs: number): Job {
    return {
      id,
      tenant: input.tenant,
      requestId: input.requestId,
      spec,
      state: "pending",
      reason: "waiting for placement",
      tasks: Array.from({ length: spec.replicas }, (_, i) => newTask(id, i)),
      createdAtMs,
      updatedAtMs: this.now(),
      finishedAtMs: 0,
      cancelRequested: false,
      spent: 0,
      reserved: 0,
    };
  }

  private async createJob(
    id: string,
    input: SubmitInput,
    spec: JobSpec,
    createdAtMs = this.now(),
    /** Whether a failed job write may release the reservation (not once the intake owns the submission). */
    mayUndo: () => boolean = () => true,
  ): Promise<JobEntry> {
    const job = this.newJob(id, input, spec, createdAtMs);
    // Reserve first (refused → FAILED_PRECONDITION, nothing written); undo it if the job cannot be written,
    // unless a concurrent retry wrote the same job, which then owns the reservation, or the submission fell
    // back to the intake meanwhile: the materialiser then owns it (its reserve under this job id was a no-op, and
    // releasing now would leave its job without a reservation).
    if (this.admission) job.reserved = await this.admission.reserve(input.tenant, id, spec);
    let entry: JobEntry;
    try {
      entry = await this.jobs.create(job);
    } catch (err) {
      if (this.admission && mayUndo() && !(await this.jobs.fetch(id).catch(() => undefined)))
        if (mayUndo()) await this.admission.release(input.tenant, id).catch(() => undefined); // again after the read
      throw err;
    }
    this.onSubmitted();
    // No evaluation is asked for here: the job repo's change listener (scheduler.ts) asks for one for every job it
    // sees created, this replica's and other replicas' alike, and did so before this line ran; asking again
    // queued a second evaluation behind the running one for most submissions (0.6-0.8 per job in bench:e2e),
    // which found the job placed and did nothing.
    return entry;
  }
}

/** Fills wire zero values that mean "default". */
function normalize(spec: JobSpec): JobSpec {
  const template = { ...spec.template };
  if (template.killGraceSeconds === 0) template.killGraceSeconds = DEFAULT_KILL_GRACE_SECONDS;
  return { ...spec, template };
}
