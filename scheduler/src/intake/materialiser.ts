/**
 * The leader's materialiser: follows both intake streams from their first message and completes each pending
 * submission with JobService.materialise (request record, admission, job record; idempotent under the
 * acknowledged job id), then deletes the message — only once the job record exists, so a crash anywhere in
 * between leaves the message for the next leader. One message at a time, in arrival order; a failure (the store
 * still stuck) is retried after a pause while this replica leads.
 *
 * Cancel intents: CancelJob on a job not written yet publishes one to the stream holding its submission, after
 * it. A submission with an intent known — in this replica's index, or the last message on the job's subject in
 * its stream (read just before the job is written, so an intent a previous leader accepted is not missed) — is
 * written cancelled and never placed. The intent's own message, met next, then finds the job cancelled already;
 * one accepted while the job was being written cancels the written record (as a CancelJob would). Its message is
 * deleted only once applied, like a submission's: a cancel is never lost to a crash or a leader change.
 */

import { INTAKE_STREAMS, intakeSubject } from "@capa/bus";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";
import { type CancelIntent, decodeIntake, type PendingSubmission } from "./envelope.js";
import { type Follower, followIntake, type IntakeMessage } from "./follow.js";
import type { PendingIndex } from "./pending-index.js";

const RETRY_MS = 500;

export interface MaterialiserDeps {
  jsm: JetStreamManager;
  jobs: JobService;
  index: PendingIndex;
  metrics: SchedulerMetrics;
  logger: Logger;
  /** How often each stream is polled (default DEFAULT_FOLLOW_INTERVAL_MS; unit tests go faster). */
  followIntervalMs?: number;
}

export class Materialiser implements LeaderPart {
  private followers: Follower[] = [];
  private queue: IntakeMessage[] = [];
  private generation = 0;
  private draining: Promise<void> | undefined;

  constructor(private readonly d: MaterialiserDeps) {}

  start(): void {
    if (this.followers.length > 0) return;
    const generation = ++this.generation;
    this.queue = [];
    this.followers = INTAKE_STREAMS.map((stream) =>
      followIntake(
        this.d.jsm,
        stream,
        (m) => {
          if (generation !== this.generation) return;
          this.queue.push(m);
          this.draining ??= this.drain(generation).finally(() => {
            this.draining = undefined;
          });
        },
        this.d.logger,
        this.d.followIntervalMs,
      ),
    );
  }

  async stop(): Promise<void> {
    this.generation++;
    const followers = this.followers;
    this.followers = [];
    this.queue = [];
    await Promise.all(followers.map((f) => f.stop()));
    await this.draining;
  }

  /** Pending submissions waiting here (a gauge for tests and logs). */
  get backlog(): number {
    return this.queue.length;
  }

  private async drain(generation: number): Promise<void> {
    while (generation === this.generation && this.queue.length > 0) {
      const m = this.queue[0]!;
      const jobId = m.entry.kind === "submission" ? m.entry.submission.job.id : m.entry.cancel.jobId;
      try {
        if (m.entry.kind === "submission") await this.materialise(m, m.entry.submission);
        else await this.applyCancel(m, m.entry.cancel);
        await this.d.jsm.streams.deleteMessage(m.stream, m.seq).catch((err: Error) => {
          if (!/no message found|not found/i.test(err.message)) throw err;
        });
        this.d.index.remove(jobId);
        if (this.queue[0] === m) this.queue.shift();
      } catch (err) {
        if (generation !== this.generation) return;
        this.d.logger.warn({ err, jobId, stream: m.stream, seq: m.seq }, "intake: materialising failed; retrying");
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }

  private async materialise(m: IntakeMessage, p: PendingSubmission): Promise<void> {
    const jobId = p.job.id;
    const cancel = this.d.index.entry(jobId)?.cancel ?? (await this.cancelInStream(m, p));
    const outcome = await this.d.jobs.materialise(p, cancel);
    this.d.metrics.intakeMaterialised.inc({ outcome: outcome.startsWith("created beside") ? "beside" : outcome });
    if (outcome === "created cancelled") this.d.metrics.intakeCancels.inc({ outcome: "created-cancelled" });
    const level = outcome === "created" || outcome === "existed" || outcome === "created cancelled" ? "info" : "warn";
    this.d.logger[level]({ jobId, stream: m.stream, seq: m.seq, outcome }, "intake: pending submission materialised");
  }

  /**
   * The cancel intent after `m` in its stream, if the job's subject ends with one (read through the stream
   * leader; it answers the delete that follows anyway). Another tenant's intent does not count.
   */
  private async cancelInStream(m: IntakeMessage, p: PendingSubmission): Promise<CancelIntent | undefined> {
    const i = INTAKE_STREAMS.indexOf(m.stream as (typeof INTAKE_STREAMS)[number]);
    const last = await this.d.jsm.streams
      .getMessage(m.stream, { last_by_subj: intakeSubject(i, p.job.id) })
      .catch((err: Error) => {
        if (/no message found/i.test(err.message)) return null;
        throw err;
      });
    if (!last || last.seq <= m.seq) return undefined;
    let entry: ReturnType<typeof decodeIntake>;
    try {
      entry = decodeIntake(last.data);
    } catch {
      return undefined; // undecodable: its follower logs and skips it
    }
    return entry.kind === "cancel" && entry.cancel.tenant === p.job.tenant ? entry.cancel : undefined;
  }

  private async applyCancel(m: IntakeMessage, intent: CancelIntent): Promise<void> {
    const outcome = await this.d.jobs.applyCancelIntent(intent, this.d.index.entry(intent.jobId)?.submission);
    const counted = outcome === "other tenant" || outcome === "no such job" ? "ignored" : outcome.replace(" ", "-");
    this.d.metrics.intakeCancels.inc({ outcome: counted });
    const level = outcome === "other tenant" || outcome === "no such job" ? "error" : "info";
    this.d.logger[level](
      { jobId: intent.jobId, tenant: intent.tenant, stream: m.stream, seq: m.seq, outcome },
      "intake: cancel intent applied",
    );
  }
}
