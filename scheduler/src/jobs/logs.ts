/**
 * StreamLogs: each task's `capa.v1.task.<taskId>.logs` read from CAPA_TASKS with its own ordered consumer, from
 * the first message. Without `follow` it stops at the subject's last message at the time of the call. With
 * `follow` it streams until the job is final, waits a short grace for late chunks, then drains up to the last
 * message and ends.
 */
import { decode, STREAMS, type Store, subjects } from "@capa/bus";
import { isFinalJobState, type LogChunk } from "@capa/domain";
import type { JobRepo } from "../store/job-repo.js";

export const MAX_FOLLOWED_TASKS = 64;

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

export class LogReader {
  constructor(
    private readonly store: Store,
    private readonly jobs: JobRepo,
    private readonly graceMs: number,
  ) {}

  async stream(request: LogRequest, sink: LogSink, abort: AbortSignal): Promise<void> {
    const ends = request.taskIds.map(() => deferred<number>());
    const pumps = request.taskIds.map((taskId, i) => this.pump(taskId, ends[i]!.promise, sink, abort));
    if (request.follow) {
      await this.untilFinal(request.jobId, abort);
      if (!abort.aborted) await sleep(this.graceMs, abort);
    }
    for (const [i, taskId] of request.taskIds.entries()) ends[i]!.resolve(await this.lastSeq(taskId));
    await Promise.all(pumps);
  }

  private async pump(taskId: string, end: Promise<number>, sink: LogSink, abort: AbortSignal): Promise<void> {
    const subject = subjects.taskLogs(taskId);
    let target = Number.POSITIVE_INFINITY;
    let delivered = 0;
    const consumer = await this.store.js.consumers.get(STREAMS.tasks, {
      filter_subjects: subject,
      deliver_policy: "all",
    });
    const messages = await consumer.consume({ max_messages: 256 });
    const stop = () => messages.stop();
    abort.addEventListener("abort", stop, { once: true });
    void end.then((seq) => {
      target = seq;
      if (delivered >= target) stop();
    });
    try {
      for await (const m of messages) {
        delivered = m.seq;
        if (sink.closed || abort.aborted) break;
        try {
          await sink.write(decode.log(m.data));
        } catch {
          // an undecodable chunk is skipped
        }
        if (delivered >= target) break;
      }
    } finally {
      abort.removeEventListener("abort", stop);
      messages.stop();
      await consumer.delete().catch(() => undefined);
    }
  }

  private async lastSeq(taskId: string): Promise<number> {
    const last = await this.store.jsm.streams.getMessage(STREAMS.tasks, { last_by_subj: subjects.taskLogs(taskId) });
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
      const current = this.jobs.get(jobId);
      if (abort.aborted || (current && isFinalJobState(current.job.state))) done();
    });
  }
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
    const t = setTimeout(resolve, ms);
    abort.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
