/**
 * StreamLogs: each task's `capa.v1.task.<taskId>.logs` read from CAPA_LOGS with its own ordered consumer, from
 * the first message still kept (CAPA_LOGS drops a task's oldest chunks over its per-task cap, and all logs after
 * 7 days). Logs published before CAPA_LOGS existed (when CAPA_TASKS held them) are not shown: they stay in
 * CAPA_TASKS until they age out, readable only with stream tools. Without `follow` it stops at the subject's last
 * message at the time of the call. With `follow` it streams until the job is final, waits a short grace for late
 * chunks, then drains up to the last message and ends.
 *
 * Failures never escape as unhandled rejections: every pump's failure is caught as soon as the pump starts, is
 * recorded and stops the others. When the read fails (a JetStream error, the log stream deleted) or the caller aborts,
 * every pump is stopped and its consumer deleted before `stream()` settles; a failure rejects with
 * {@link LogsUnavailableError} (UNAVAILABLE: the client may retry).
 */
import { decode, STREAMS, type Store, subjects } from "@capa/bus";
import { CapaError, isFinalJobState, type LogChunk } from "@capa/domain";
import type { JobRepo } from "../store/job-repo.js";

export const MAX_FOLLOWED_TASKS = 64;

/** Reading the logs failed (JetStream unavailable, the log stream gone): the client may retry. */
export class LogsUnavailableError extends CapaError {
  readonly code = "UNAVAILABLE";
}

export interface LogSink {
  /** Resolves when the chunk may be followed by another (backpressure). */
  write(chunk: LogChunk): Promise<void>;
  /** The reader went away. */
  readonly closed: boolean;
}

export interface LogRequest {
  jobId: string;
  taskIds: string[];
  follow: boolean;
}

type Consumer = Awaited<ReturnType<Store["js"]["consumers"]["get"]>>;
type Messages = Awaited<ReturnType<Consumer["consume"]>>;

export class LogReader {
  constructor(
    private readonly store: Store,
    private readonly jobs: JobRepo,
    private readonly graceMs: number,
  ) {}

  async stream(request: LogRequest, sink: LogSink, signal: AbortSignal): Promise<void> {
    // Our own controller: the caller's abort and the first failure both stop every pump.
    const local = new AbortController();
    const abort = local.signal;
    const forward = () => local.abort();
    signal.addEventListener("abort", forward, { once: true });
    if (signal.aborted) local.abort();
    let failure: { error: unknown } | undefined;
    const fail = (error: unknown) => {
      failure ??= { error };
      local.abort();
    };
    try {
      const ends = request.taskIds.map(() => deferred<number>());
      // Handled at once: a pump failing while we wait for the job below is recorded, not left unhandled.
      const pumps = Promise.all(
        request.taskIds.map((taskId, i) => this.pump(taskId, ends[i]!.promise, sink, abort).catch(fail)),
      );
      try {
        if (request.follow) {
          await this.untilFinal(request.jobId, abort);
          if (!abort.aborted) await sleep(this.graceMs, abort);
        }
        if (!abort.aborted) {
          const last = await Promise.all(request.taskIds.map((taskId) => this.lastSeq(taskId)));
          for (const [i, seq] of last.entries()) ends[i]!.resolve(seq);
        }
      } catch (err) {
        fail(err);
      }
      await pumps;
    } finally {
      signal.removeEventListener("abort", forward);
    }
    if (failure) throw unavailable(failure.error);
  }

  private async pump(taskId: string, end: Promise<number>, sink: LogSink, abort: AbortSignal): Promise<void> {
    if (abort.aborted) return;
    const consumer = await this.store.js.consumers.get(STREAMS.logs, {
      filter_subjects: subjects.taskLogsAnyAgent(taskId),
      deliver_policy: "all",
    });
    try {
      const messages = await consumer.consume({ max_messages: 256 });
      const stop = () => messages.stop();
      abort.addEventListener("abort", stop, { once: true });
      if (abort.aborted) stop();
      void this.failWhenStreamGone(messages);
      let target = Number.POSITIVE_INFINITY;
      let delivered = 0;
      void end.then((seq) => {
        target = seq;
        if (delivered >= target) stop();
      });
      try {
        for await (const m of messages) {
          delivered = m.seq;
          if (sink.closed || abort.aborted) break;
          const chunk = decodeLog(m.data);
          if (chunk) await untilAborted(sink.write(chunk), abort);
          if (delivered >= target) break;
        }
      } finally {
        abort.removeEventListener("abort", stop);
        messages.stop();
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /**
   * An ordered consumer retries for ever when its stream is gone; a log reader gives up instead. The server
   * tells a waiting pull at once that its consumer was deleted: if the stream went with it, the read fails.
   */
  private async failWhenStreamGone(messages: Messages): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (s.type === "stream_not_found" || (s.type === "consumer_deleted" && !(await this.streamExists()))) {
          messages.stop(new LogsUnavailableError(`the log stream ${STREAMS.logs} is gone; retry`));
          return;
        }
      }
    } catch {
      // the notifications end with the messages
    }
  }

  private async streamExists(): Promise<boolean> {
    try {
      await this.store.jsm.streams.info(STREAMS.logs);
      return true;
    } catch (err) {
      // Only a definite "not found" counts; anything else is left to the consumer's own retries.
      return !/stream not found/i.test((err as Error)?.message ?? "");
    }
  }

  private async lastSeq(taskId: string): Promise<number> {
    const last = await this.store.jsm.streams.getMessage(STREAMS.logs, {
      last_by_subj: subjects.taskLogsAnyAgent(taskId),
    });
    return last?.seq ?? 0;
  }

  private untilFinal(jobId: string, abort: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        unsubscribe();
        abort.removeEventListener("abort", done);
        resolve();
      };
      const unsubscribe = this.jobs.subscribe(jobId, (entry) => {
        if (isFinalJobState(entry.job.state)) done();
      });
      abort.addEventListener("abort", done, { once: true });
      // The summary: a retired job is not necessarily held in memory any more.
      const current = this.jobs.summary(jobId);
      if (abort.aborted || (current && isFinalJobState(current.state))) done();
    });
  }
}

/** A failure other than our own becomes UNAVAILABLE with what went wrong. */
function unavailable(err: unknown): Error {
  if (err instanceof CapaError) return err;
  const message = (err as Error)?.message ?? String(err);
  return new LogsUnavailableError(`reading the logs failed: ${message}; retry`, { cause: err });
}

/** An undecodable chunk is skipped. */
function decodeLog(data: Uint8Array): LogChunk | undefined {
  try {
    return decode.log(data);
  } catch {
    return undefined;
  }
}

/** Waits for `p` unless `abort` fires first (a stalled reader does not hold a stopped pump). */
function untilAborted(p: Promise<void>, abort: AbortSignal): Promise<void> {
  if (abort.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      abort.removeEventListener("abort", done);
      resolve();
    };
    abort.addEventListener("abort", done, { once: true });
    p.then(done, (err) => {
      abort.removeEventListener("abort", done);
      reject(err);
    });
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function sleep(ms: number, abort: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      abort.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    abort.addEventListener("abort", done, { once: true });
  });
}
