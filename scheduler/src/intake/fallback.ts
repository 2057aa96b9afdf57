/**
 * The submit fallback (JobService's SubmitFallback): races the normal path against the stall budget, and when
 * `decideSubmit` says so, writes the pending submission to the intake and answers the job in its first state once
 * an intake stream's quorum acknowledged it (durable before acknowledged, as on the normal path). When no intake
 * stream answers either, it keeps waiting for the normal path (which then answers, or fails as before).
 */
import type { Job } from "@capa/domain";
import type { Logger } from "pino";
import { cancelledCopy } from "../jobs/cancel.js";
import type { SubmitFallback, SubmitResult } from "../jobs/job-service.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { SubmitAttempt } from "./attempt.js";
import { decideSubmit, type NormalOutcome } from "./decision.js";
import type { CancelIntent, PendingSubmission } from "./envelope.js";
import type { PendingIndex } from "./pending-index.js";
import type { IntakeWriter } from "./writer.js";

export class IntakeFallback implements SubmitFallback {
  constructor(
    private readonly writer: IntakeWriter,
    private readonly index: PendingIndex,
    private readonly metrics: SchedulerMetrics,
    private readonly logger: Logger,
    private readonly stallBudgetMs: number,
  ) {}

  pendingJob(jobId: string) {
    return this.index.get(jobId);
  }

  pendingJobs(): Iterable<Job> {
    return this.index.jobs();
  }

  /**
   * CancelJob on a job held here: a cancel intent written to the intake stream holding its submission, after
   * it (durable before answered), then answered as the job cancelled. The materialiser writes the job cancelled
   * (never placed), or cancels the record it already wrote. Undefined when the job is not held (any more): its
   * record is written, and the caller cancels that. A job already cancel-requested is answered unchanged.
   */
  async cancelPending(jobId: string, reason: string, nowMs: number): Promise<Job | undefined> {
    const entry = this.index.entry(jobId);
    if (!entry) return undefined;
    if (entry.cancel) return entry.view;
    // The tenant is the submission's own, whoever asks: the caller was checked against it already.
    const intent: CancelIntent = { jobId, tenant: entry.submission.job.tenant, reason, atMs: nowMs };
    try {
      const written = await this.writer.writeCancel(entry.stream, intent);
      this.metrics.intakeCancels.inc({ outcome: written.duplicate ? "duplicate" : "written" });
      this.logger.warn(
        { jobId, stream: entry.stream, seq: written.seq },
        "cancel: job not written yet; cancel intent written to the intake",
      );
    } catch (err) {
      this.metrics.intakeCancels.inc({ outcome: "failed" });
      throw err;
    }
    this.index.cancel(intent);
    // Materialised while the intent was written: the materialiser cancels the record next.
    return this.index.get(jobId) ?? cancelledCopy(entry.submission.job, intent);
  }

  async submit(
    normal: Promise<SubmitResult>,
    attempt: SubmitAttempt,
    pending: () => PendingSubmission,
    msgId: string,
  ): Promise<SubmitResult> {
    const settled: Promise<NormalOutcome<SubmitResult>> = normal.then(
      (result) => ({ kind: "answered", result }),
      (err: unknown) => ({ kind: "failed", err }),
    );
    let intakeTried = false;
    for (;;) {
      const outcome = intakeTried ? await settled : await raceBudget(settled, this.stallBudgetMs);
      const decision = decideSubmit(outcome, attempt.jobId !== undefined);
      if (decision === "answer" || (decision === "fall back" && intakeTried)) return normal;
      if (decision === "wait") continue;
      intakeTried = true;
      // From here the materialiser may own the submission: the normal path must undo nothing (SubmitAttempt).
      attempt.abandoned = true;
      const submission = pending();
      try {
        const written = await this.writer.write(submission, msgId);
        this.index.add(written.pending, written.stream);
        this.metrics.intakeSubmissions.inc({
          stream: written.stream,
          outcome: written.duplicate ? "duplicate" : "written",
        });
        this.logger.warn(
          {
            jobId: written.pending.job.id,
            stream: written.stream,
            seq: written.seq,
            normal: outcome.kind === "failed" ? String((outcome.err as Error)?.message ?? outcome.err) : "stalled",
          },
          "submit: normal path stuck on the store; acknowledged from the intake",
        );
        normal.catch(() => undefined);
        // A duplicate of a request another submission wrote is answered as one even when its intake write is the
        // request's first (nothing to dedup against; the writer answered "new" on the normal path) or landed in the
        // other stream: the full fault suite saw 2 of 1,000 concurrent duplicates answered as new.
        return { job: written.pending.job, deduplicated: written.duplicate || attempt.duplicate };
      } catch (err) {
        this.metrics.intakeSubmissions.inc({ stream: "", outcome: "failed" });
        this.logger.warn(
          { err, jobId: submission.job.id },
          "submit: no intake stream answered; waiting for the normal path",
        );
        if (outcome.kind === "failed") throw err;
      }
    }
  }
}

function raceBudget<T>(settled: Promise<NormalOutcome<T>>, budgetMs: number): Promise<NormalOutcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<NormalOutcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ kind: "pending" }), budgetMs);
  });
  return Promise.race([settled, stall]).finally(() => clearTimeout(timer));
}
