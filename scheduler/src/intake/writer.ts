/**
 * The fallback's durable write: the pending submission is published to an intake stream and counts as durable
 * once that stream's quorum acknowledged it (the JetStream PubAck). Both streams are tried, one after the other:
 * first the one the request key hashes to (so concurrent duplicates of one request id meet in one stream, where
 * the msg-id dedup answers the second with the first's job), then the other. A duplicate PubAck is answered with
 * the stored submission's job (or ALREADY_EXISTS when its spec differs, as the request record would answer).
 */

import { createHash } from "node:crypto";
import { INTAKE_STREAMS, intakeSubject } from "@capa/bus";
import { UnavailableError } from "@capa/domain";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { AlreadyExistsError } from "../jobs/errors.js";
import { type CancelIntent, decodePending, encodeCancel, encodePending, type PendingSubmission } from "./envelope.js";

/** Neither intake stream acknowledged the pending submission: it is not durable, so it is not acknowledged. */
export class IntakeUnavailableError extends UnavailableError {}

/** The intake stream holding a job's submission did not acknowledge its cancel intent: not accepted; retry. */
export class CancelIntentUnavailableError extends UnavailableError {}

export interface IntakeWrite {
  stream: string;
  seq: number;
  /** The job the submission has: the one written, or for a duplicate msg id the one stored first. */
  pending: PendingSubmission;
  duplicate: boolean;
}

export class IntakeWriter {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /** How long one stream's PubAck is awaited before the other stream is tried. */
    private readonly perStreamTimeoutMs = 1_500,
  ) {}

  /** `msgId`: the request key (or the job id when the submission has no request id). */
  async write(p: PendingSubmission, msgId: string): Promise<IntakeWrite> {
    const first = createHash("sha256").update(msgId).digest()[0]! % INTAKE_STREAMS.length;
    const failures: unknown[] = [];
    for (let k = 0; k < INTAKE_STREAMS.length; k++) {
      const i = (first + k) % INTAKE_STREAMS.length;
      const stream = INTAKE_STREAMS[i]!;
      try {
        const ack = await this.js.publish(intakeSubject(i, p.job.id), encodePending(p), {
          msgID: msgId,
          expect: { streamName: stream },
          timeout: this.perStreamTimeoutMs,
          retries: 0,
        });
        if (!ack.duplicate) return { stream, seq: ack.seq, pending: p, duplicate: false };
        const msg = await this.jsm.streams.getMessage(stream, { seq: ack.seq });
        if (!msg) throw new Error(`intake message ${stream}/${ack.seq} is gone (materialised since)`);
        const stored = decodePending(msg.data);
        if (stored.specDigest !== p.specDigest)
          throw new AlreadyExistsError("request_id: already used for a different job spec");
        return { stream, seq: ack.seq, pending: stored, duplicate: true };
      } catch (err) {
        if (err instanceof AlreadyExistsError) throw err;
        failures.push(err);
      }
    }
    throw new IntakeUnavailableError("the store is unavailable (no intake stream answered); retry", {
      cause: failures.at(-1),
    });
  }

  /**
   * Publishes a cancel intent to `stream`, the one holding the job's submission, so it lands after it: that
   * stream alone (the materialiser meets the submission first only there). Durable once its quorum acknowledged
   * it; a repeat within the stream's duplicate window is stored once (msg id `cancel:<jobId>`).
   */
  async writeCancel(stream: string, intent: CancelIntent): Promise<{ seq: number; duplicate: boolean }> {
    const i = INTAKE_STREAMS.indexOf(stream as (typeof INTAKE_STREAMS)[number]);
    if (i < 0) throw new Error(`not an intake stream: ${stream}`);
    try {
      const ack = await this.js.publish(intakeSubject(i, intent.jobId), encodeCancel(intent), {
        msgID: `cancel:${intent.jobId}`,
        expect: { streamName: stream },
        timeout: this.perStreamTimeoutMs,
        retries: 0,
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw new CancelIntentUnavailableError(
        `job ${intent.jobId} is accepted and not written yet, and the intake stream holding it did not answer; retry`,
        { cause: err },
      );
    }
  }
}
