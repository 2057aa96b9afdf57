/**
 * The leader's materialiser: follows both intake streams from their first message and completes each pending
 * submission with JobService.materialise (request record, admission, job record; idempotent under the
 * acknowledged job id), then deletes the message — only once the job record exists, so a crash anywhere in
 * between leaves the message for the next leader. One message at a time, in arrival order; a failure (the store
 * still stuck) is retried after a pause while this replica leads.
 */

import { INTAKE_STREAMS } from "@capa/bus";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";
import { type Follower, followIntake, type IntakeMessage } from "./follow.js";
import type { PendingIndex } from "./pending-index.js";

const RETRY_MS = 500;

export interface MaterialiserDeps {
  jsm: JetStreamManager;
  jobs: JobService;
  index: PendingIndex;
  metrics: SchedulerMetrics;
  logger: Logger;
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
      const jobId = m.pending.job.id;
      try {
        const outcome = await this.d.jobs.materialise(m.pending);
        await this.d.jsm.streams.deleteMessage(m.stream, m.seq).catch((err: Error) => {
          if (!/no message found|not found/i.test(err.message)) throw err;
        });
        this.d.index.remove(jobId);
        this.d.metrics.intakeMaterialised.inc({ outcome: outcome.startsWith("created beside") ? "beside" : outcome });
        const level = outcome === "created" || outcome === "existed" ? "info" : "warn";
        this.d.logger[level](
          { jobId, stream: m.stream, seq: m.seq, outcome },
          "intake: pending submission materialised",
        );
        if (this.queue[0] === m) this.queue.shift();
      } catch (err) {
        if (generation !== this.generation) return;
        this.d.logger.warn({ err, jobId, stream: m.stream, seq: m.seq }, "intake: materialising failed; retrying");
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }
}
