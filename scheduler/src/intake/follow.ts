/**
 * Reads one intake stream from its first message and keeps following it (an ordered consumer; recreated after a
 * failure, resuming after the last message seen). Used by every replica (the pending index) and by the leader's
 * materialiser (its own follower, from the start, at each leadership).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodePending, type PendingSubmission } from "./envelope.js";

export interface IntakeMessage {
  stream: string;
  seq: number;
  pending: PendingSubmission;
}

const RETRY_MS = 500;

export interface Follower {
  stop(): Promise<void>;
}

export function followIntake(
  js: JetStreamClient,
  stream: string,
  onMessage: (m: IntakeMessage) => void,
  logger: Logger,
): Follower {
  let stopped = false;
  let lastSeq = 0;
  let stopCurrent: (() => void) | undefined;
  const follow = async () => {
    const consumer = await js.consumers.get(stream, {
      ...(lastSeq > 0
        ? { deliver_policy: "by_start_sequence" as const, opt_start_seq: lastSeq + 1 }
        : { deliver_policy: "all" as const }),
    });
    try {
      const messages = await consumer.consume({ max_messages: 256 });
      stopCurrent = () => messages.stop();
      if (stopped) messages.stop();
      for await (const m of messages) {
        lastSeq = m.seq;
        try {
          onMessage({ stream, seq: m.seq, pending: decodePending(m.data) });
        } catch (err) {
          logger.error({ err, stream, seq: m.seq }, "intake: undecodable message skipped");
        }
      }
    } finally {
      stopCurrent = undefined;
      await consumer.delete().catch(() => undefined);
    }
  };
  const run = (async () => {
    while (!stopped) {
      try {
        await follow();
      } catch (err) {
        if (!stopped) logger.warn({ err, stream }, "intake: following the stream failed; retrying");
      }
      if (!stopped) await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
  })();
  return {
    async stop() {
      stopped = true;
      stopCurrent?.();
      await run;
    },
  };
}
