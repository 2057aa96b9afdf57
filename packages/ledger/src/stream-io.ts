/**
 * Write-once publishing and filtered reads on the ledger stream.
 *
 * Exactly-once storage has two guards, because JetStream's message-id de-duplication only lasts its
 * duplicate window (minutes):
 * 1. `msgID` = the entry id: a retry inside the window is acknowledged with `duplicate: true`.
 * 2. `expect.lastSubjectSequence = 0` on the entry's own subject: the server refuses the write if anything
 *    was ever stored there ("wrong last sequence"), atomically and for ever — a replay a day later is refused
 *    as well. No separate marker (a KV key) is needed, so there is no window between "written" and "marked".
 * Readers also de-duplicate by id (`dedupeEntries`) as a last line of defence.
 */

import { ensureStream, jsPlacement } from "@capa/bus";
import { UnavailableError } from "@capa/domain";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { LEDGER_STREAM, LEDGER_SUBJECTS } from "./subjects.js";

const NANOS_PER_MS = 1_000_000;
export const MIN_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

export interface LedgerStreamOptions {
  /** JetStream replicas (1 on a single server; 3 in a cluster). */
  replicas?: number;
  /** Pin the stream to this NATS cluster (the home region). */
  placementCluster?: string;
  /** At least two minutes; longer only widens guard 1 (guard 2 has no window). */
  duplicateWindowMs?: number;
}

/**
 * Creates (or updates) CAPA_LEDGER idempotently: file storage, kept for ever, and append-only enforced by
 * the server (deny_delete, deny_purge): nobody, the scheduler included, can remove an entry.
 */
export async function ensureLedgerStream(jsm: JetStreamManager, options: LedgerStreamOptions = {}): Promise<void> {
  const duplicateWindowMs = Math.max(MIN_DUPLICATE_WINDOW_MS, options.duplicateWindowMs ?? MIN_DUPLICATE_WINDOW_MS);
  await ensureStream(jsm, {
    name: LEDGER_STREAM,
    subjects: [LEDGER_SUBJECTS],
    storage: "file",
    num_replicas: options.replicas ?? 1,
    duplicate_window: duplicateWindowMs * NANOS_PER_MS,
    max_age: 0,
    deny_delete: true,
    deny_purge: true,
    ...(options.placementCluster ? { placement: jsPlacement(options.placementCluster)! } : {}),
  });
}

export type WriteOutcome =
  | { stored: true; seq: number }
  /** Refused as a copy of what is already there: by message id (inside the window) or by subject (any time). */
  | { stored: false; duplicateBy: "msg-id" | "subject" };

export class LedgerUnavailableError extends UnavailableError {}

function isWrongLastSequence(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.StreamWrongLastSequence;
  return /wrong last sequence/i.test(String((err as Error)?.message ?? err));
}

/** Publishes `data` on `subject` unless an entry with this id or on this subject was ever stored. */
export async function publishOnce(
  js: JetStreamClient,
  subject: string,
  id: string,
  data: Uint8Array,
): Promise<WriteOutcome> {
  try {
    const ack = await js.publish(subject, data, { msgID: id, expect: { lastSubjectSequence: 0 } });
    return ack.duplicate ? { stored: false, duplicateBy: "msg-id" } : { stored: true, seq: ack.seq };
  } catch (err) {
    if (isWrongLastSequence(err)) return { stored: false, duplicateBy: "subject" };
    throw new LedgerUnavailableError(`ledger write of ${id} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The message stored on an exact subject, or undefined. */
export async function readOne(jsm: JetStreamManager, subject: string): Promise<Uint8Array | undefined> {
  try {
    const msg = await jsm.streams.getMessage(LEDGER_STREAM, { last_by_subj: subject });
    return msg ? msg.data : undefined;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return undefined;
    throw new LedgerUnavailableError(`ledger read of ${subject} failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Every message stored on one exact subject of `stream`, in stream order, by direct reads (STREAM.MSG.GET with
 * `next_by_subj`): k messages cost k + 1 requests and no consumer, so nothing is created, replicated or deleted
 * on the server (an ephemeral consumer per read was 3 API calls plus consumer state). Messages published while it
 * reads may or may not be included, as with a consumer.
 */
export async function readSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let seq = 0;
  try {
    for (;;) {
      // `next_by_subj` is served by STREAM.MSG.GET since nats-server 2.9 (the client types it for direct get only).
      const query = { next_by_subj: subject, seq } as unknown as Parameters<
        JetStreamManager["streams"]["getMessage"]
      >[1];
      const msg = await jsm.streams.getMessage(stream, query);
      if (!msg) return out;
      out.push(msg.data);
      seq = msg.seq + 1;
    }
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return out;
    throw new LedgerUnavailableError(`read of ${subject} from ${stream} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

const FETCH_BATCH = 512;
const FETCH_EXPIRES_MS = 2_000;

/**
 * Every message on subjects matching `filter`, in stream order, through a short-lived ephemeral consumer.
 * The consumer's pending count at creation tells when the read is complete, so an empty result costs one
 * round trip, not a timeout.
 */
export async function readAll(js: JetStreamClient, jsm: JetStreamManager, filter: string): Promise<Uint8Array[]> {
  return readStream(js, jsm, LEDGER_STREAM, filter);
}

/** `readAll` on any stream (the usage reports live in CAPA_TASKS). */
export async function readStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
): Promise<Uint8Array[]> {
  let name: string | undefined;
  try {
    const info = await jsm.consumers.add(stream, {
      filter_subject: filter,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 60_000 * NANOS_PER_MS,
      mem_storage: true,
    });
    name = info.name;
    let pending = info.num_pending;
    const out: Uint8Array[] = [];
    const consumer = await js.consumers.get(stream, name);
    while (pending > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(pending, FETCH_BATCH), expires: FETCH_EXPIRES_MS });
      let received = 0;
      for await (const m of batch) {
        out.push(m.data);
        received++;
        pending = m.info.pending;
      }
      if (received === 0) break;
    }
    return out;
  } catch (err) {
    throw new LedgerUnavailableError(`read of ${filter} from ${stream} failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    if (name) await jsm.consumers.delete(stream, name).catch(() => undefined);
  }
}
