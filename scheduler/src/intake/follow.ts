/**
 * Reads one intake stream from its first message and keeps following it, by polling: every `intervalMs` the
 * stream's info (first and last sequence), then each new message by sequence (STREAM.MSG.GET, answered by the
 * stream leader; a deleted one is skipped). Polling rather than a consumer: a `consume()` subscription can go
 * quiet for good after a server dies (store/quiet-consumer.ts), and a pending submission must never wait on that;
 * an idle stream costs one info request per interval. Used by every replica (the pending index) and by the
 * leader's materialiser (its own follower, from the start, at each leadership).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeIntake, type IntakeEntry } from "./envelope.js";

export interface IntakeMessage {
  stream: string;
  seq: number;
  entry: IntakeEntry;
}

export interface Follower {
  stop(): Promise<void>;
}

/** An idle stream costs one info request per interval per follower (2 per replica, 2 more on the leader). */
export const DEFAULT_FOLLOW_INTERVAL_MS = 500;

export function followIntake(
  jsm: JetStreamManager,
  stream: string,
  onMessage: (m: IntakeMessage) => void,
  logger: Logger,
  intervalMs = DEFAULT_FOLLOW_INTERVAL_MS,
): Follower {
  let stopped = false;
  let nextSeq = 0;
  let wake: (() => void) | undefined;
  const poll = async () => {
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) {
      nextSeq = Math.max(nextSeq, state.last_seq + 1);
      return;
    }
    for (let seq = Math.max(nextSeq, state.first_seq); seq <= state.last_seq && !stopped; seq++) {
      const msg = await jsm.streams.getMessage(stream, { seq }).catch((err: Error) => {
        if (/no message found/i.test(err.message)) return null;
        throw err;
      });
      nextSeq = seq + 1;
      if (!msg) continue; // deleted (materialised) meanwhile
      try {
        onMessage({ stream, seq, entry: decodeIntake(msg.data) });
      } catch (err) {
        logger.error({ err, stream, seq }, "intake: undecodable message skipped");
      }
    }
  };
  const run = (async () => {
    let failing = false;
    while (!stopped) {
      try {
        await poll();
        failing = false;
      } catch (err) {
        if (!stopped && !failing) logger.warn({ err, stream }, "intake: reading the stream failed; retrying");
        failing = true;
      }
      if (stopped) break;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, intervalMs).unref();
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await run;
    },
  };
}
