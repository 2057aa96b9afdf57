/**
 * LogReader's failure paths with an in-memory JetStream stand-in: a pump failing while a follow waits for the
 * job, a failing last-sequence read, and the caller aborting. Each ends with every consumer stopped and
 * deleted, and failures reject with UNAVAILABLE (nothing is left to reject unhandled).
 */
import { encode, STREAMS, type Store } from "@capa/bus";
import type { Job } from "@capa/domain";
import { describe, expect, it } from "vitest";
import type { JobEntry, JobListener, JobRepo } from "../store/job-repo.js";
import { LogReader, type LogSink, LogsUnavailableError } from "./logs.js";

/** One consume(): an async iterator the test feeds, stops or fails, with the status notifications. */
class FakeMessages {
  private queue: { seq: number; data: Uint8Array }[] = [];
  private wake: (() => void) | undefined;
  private err: Error | undefined;
  stopped = false;

  push(seq: number, data: Uint8Array): void {
    this.queue.push({ seq, data });
    this.wake?.();
  }

  stop(err?: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.err = err;
    this.wake?.();
  }

  status(): AsyncIterable<{ type: string }> {
    return { [Symbol.asyncIterator]: async function* () {} };
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.stopped) {
        if (this.err) throw this.err;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

interface FakeConsumer {
  filter: string;
  messages: FakeMessages;
  deleted: boolean;
}

function fakeStore(options: { getFails?: (filter: string) => Error | undefined; lastSeqFails?: boolean }) {
  const consumers: FakeConsumer[] = [];
  /** Every stream a consumer, a last message or stream info was asked of. */
  const streams: string[] = [];
  let getCalls = 0;
  const store = {
    js: {
      consumers: {
        async get(stream: string, opts: { filter_subjects: string }) {
          getCalls++;
          streams.push(stream);
          await Promise.resolve();
          const err = options.getFails?.(opts.filter_subjects);
          if (err) throw err;
          const c: FakeConsumer = { filter: opts.filter_subjects, messages: new FakeMessages(), deleted: false };
          consumers.push(c);
          return {
            consume: async () => c.messages,
            delete: async () => {
              c.deleted = true;
              return true;
            },
          };
        },
      },
    },
    jsm: {
      streams: {
        async getMessage(stream: string) {
          streams.push(stream);
          if (options.lastSeqFails) throw new Error("TimeoutError: timeout");
          return null;
        },
        async info(stream: string) {
          streams.push(stream);
          return {};
        },
      },
    },
  };
  return { store: store as unknown as Store, consumers, streams, getCalls: () => getCalls };
}

function fakeRepo(state: Job["state"]): JobRepo {
  const entry = { job: { id: "j1", state } as Job, revision: 1 } as JobEntry;
  return {
    get: () => entry,
    summary: () => ({ id: "j1", state }),
    subscribe: (_id: string, _l: JobListener) => () => {},
  } as unknown as JobRepo;
}

const sink = (): LogSink & { chunks: string[] } => {
  const chunks: string[] = [];
  return {
    chunks,
    closed: false,
    async write(chunk) {
      chunks.push(Buffer.from(chunk.data).toString());
    },
  };
};

async function until(probe: () => boolean): Promise<void> {
  while (!probe()) await new Promise((r) => setTimeout(r, 1));
}

const chunk = (taskId: string, text: string, seq: number) =>
  encode.log({ taskId, jobId: "j1", stream: "stdout", data: Buffer.from(text), seq, atMs: 0 });

describe("LogReader", () => {
  it("reads each task's logs from CAPA_LOGS, never from CAPA_TASKS", async () => {
    const { store, consumers, streams } = fakeStore({});
    const reader = new LogReader(store, fakeRepo("succeeded"), 10);
    await reader.stream({ jobId: "j1", taskIds: ["t1", "t2"], follow: false }, sink(), new AbortController().signal);
    expect(consumers.map((c) => c.filter)).toEqual(["capa.v1.task.t1.logs.*", "capa.v1.task.t2.logs.*"]);
    expect(streams.length).toBeGreaterThanOrEqual(4);
    expect(new Set(streams)).toEqual(new Set([STREAMS.logs]));
    expect(STREAMS.logs).toBe("CAPA_LOGS");
  });

  it("a consumer that cannot be created while following rejects UNAVAILABLE and stops the other tasks' pumps", async () => {
    const { store, consumers } = fakeStore({
      getFails: (filter) => (filter.includes("t2") ? new Error("no responders available for request") : undefined),
    });
    const reader = new LogReader(store, fakeRepo("running"), 10);
    const out = sink();
    const streamed = reader.stream(
      { jobId: "j1", taskIds: ["t1", "t2"], follow: true },
      out,
      new AbortController().signal,
    );
    await expect(streamed).rejects.toBeInstanceOf(LogsUnavailableError);
    await expect(streamed).rejects.toMatchObject({ code: "UNAVAILABLE", message: /no responders/ });
    expect(consumers).toHaveLength(1);
    expect(consumers[0]).toMatchObject({ deleted: true, messages: { stopped: true } });
  });

  it("a consumer failing mid-stream ends the follow with UNAVAILABLE and deletes every consumer", async () => {
    const { store, consumers } = fakeStore({});
    const reader = new LogReader(store, fakeRepo("running"), 10);
    const out = sink();
    const streamed = reader.stream(
      { jobId: "j1", taskIds: ["t1", "t2"], follow: true },
      out,
      new AbortController().signal,
    );
    await until(() => consumers.length === 2);
    consumers[0]!.messages.push(1, chunk("t1", "hello", 1));
    await until(() => out.chunks.length === 1);
    consumers[0]!.messages.stop(new Error("stream not found"));
    await expect(streamed).rejects.toMatchObject({ code: "UNAVAILABLE", message: /stream not found/ });
    expect(out.chunks).toEqual(["hello"]);
    expect(consumers.every((c) => c.deleted && c.messages.stopped)).toBe(true);
  });

  it("a failing last-sequence read rejects UNAVAILABLE and stops every pump", async () => {
    const { store, consumers } = fakeStore({ lastSeqFails: true });
    const reader = new LogReader(store, fakeRepo("succeeded"), 10);
    const streamed = reader.stream(
      { jobId: "j1", taskIds: ["t1", "t2", "t3"], follow: false },
      sink(),
      new AbortController().signal,
    );
    await expect(streamed).rejects.toMatchObject({ code: "UNAVAILABLE", message: /timeout/ });
    expect(consumers.every((c) => c.deleted && c.messages.stopped)).toBe(true);
  });

  it("the caller aborting a follow resolves after every consumer is deleted", async () => {
    const { store, consumers } = fakeStore({});
    const reader = new LogReader(store, fakeRepo("running"), 10);
    const abort = new AbortController();
    const streamed = reader.stream({ jobId: "j1", taskIds: ["t1", "t2"], follow: true }, sink(), abort.signal);
    await until(() => consumers.length === 2);
    abort.abort();
    await streamed;
    expect(consumers.every((c) => c.deleted && c.messages.stopped)).toBe(true);
  });

  it("an abort before the consumers exist creates none", async () => {
    const { store, consumers, getCalls } = fakeStore({});
    const reader = new LogReader(store, fakeRepo("running"), 10);
    const abort = new AbortController();
    abort.abort();
    await reader.stream({ jobId: "j1", taskIds: ["t1"], follow: true }, sink(), abort.signal);
    expect(getCalls()).toBe(0);
    expect(consumers).toEqual([]);
  });
});
