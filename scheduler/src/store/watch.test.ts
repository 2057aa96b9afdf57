import { waitFor } from "@capa/testkit";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type BucketWatch, WatchBehind, type WatchedEntry, watchBucket } from "./watch.js";

/** One subscription's entries, as `kv.watch` yields them; `fail` ends it with an error, `stop` without. */
class FakeIter {
  private readonly queued: { revision: number; key: string }[] = [];
  private wake: (() => void) | undefined;
  stopped = false;
  private error: Error | undefined;
  constructor(readonly opts: { key: string; resumeFromRevision?: number }) {}
  push(revision: number, key = `a${revision}`): void {
    this.queued.push({ revision, key });
    this.wake?.();
  }
  fail(err: Error): void {
    this.error = err;
    this.wake?.();
  }
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      while (this.queued.length > 0) {
        const e = this.queued.shift()!;
        yield { key: e.key, value: new Uint8Array([e.revision]), revision: e.revision, operation: "PUT" };
      }
      if (this.error) throw this.error;
      if (this.stopped) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

/** The two calls the watch makes on a bucket: its stream's last sequence, and a subscription. */
class FakeKv {
  last = 0;
  readonly subscriptions: FakeIter[] = [];
  async status() {
    return { bucket: "capa_allocs", streamInfo: { state: { last_seq: this.last } } };
  }
  async watch(opts: { key: string; resumeFromRevision?: number }) {
    const it = new FakeIter(opts);
    this.subscriptions.push(it);
    return it;
  }
  get current(): FakeIter {
    return this.subscriptions.at(-1)!;
  }
}

const log = pino({ level: "silent" });

async function start(kv: FakeKv, key: string, options: { after?: number; stallMs?: number }) {
  const seen: WatchedEntry[] = [];
  const watch = await watchBucket(kv as never, key, (e) => seen.push(e), log, options);
  await waitFor(() => kv.subscriptions.length === 1, { what: "the first subscription" });
  return { watch, seen };
}

const revisions = (seen: WatchedEntry[]) => seen.map((e) => e.revision);

describe("watchBucket: a KV watch that does not fall behind silently", () => {
  let w: BucketWatch | undefined;
  const stop = () => w?.stop();

  it("starts after the revision read before the load, so a write in between is delivered", async () => {
    const kv = new FakeKv();
    const { watch, seen } = await start(kv, ">", { after: 5, stallMs: 60_000 });
    w = watch;
    expect(kv.current.opts.resumeFromRevision).toBe(6);
    kv.current.push(6);
    kv.current.push(7);
    await waitFor(() => seen.length === 2, { what: "two entries" });
    expect(revisions(seen)).toEqual([6, 7]);
    expect(watch.delivered).toBe(7);
    stop();
  });

  it("re-subscribes after the last delivered revision when the stream is ahead and nothing arrives", async () => {
    const kv = new FakeKv();
    const { watch, seen } = await start(kv, ">", { after: 0, stallMs: 60 });
    w = watch;
    kv.current.push(1);
    await waitFor(() => seen.length === 1, { what: "the first entry" });
    const stuck = kv.current;
    kv.last = 3; // written, never delivered by the first subscription (the consumer did not come back)
    await waitFor(() => kv.subscriptions.length === 2, { what: "a second subscription" });
    expect(stuck.stopped).toBe(true);
    expect(kv.current.opts.resumeFromRevision).toBe(2);
    // A revision delivered before the re-subscribe, delivered again, is not handed over twice.
    kv.current.push(1);
    kv.current.push(2);
    kv.current.push(3);
    await watch.catchUp(5_000);
    expect(revisions(seen)).toEqual([1, 2, 3]);
    stop();
  });

  it("re-subscribes after a subscription fails, from the revision after the last delivered", async () => {
    const kv = new FakeKv();
    const { watch, seen } = await start(kv, ">", { after: 10, stallMs: 60_000 });
    w = watch;
    kv.current.push(11);
    await waitFor(() => seen.length === 1, { what: "the first entry" });
    kv.current.fail(new Error("consumer deleted"));
    await waitFor(() => kv.subscriptions.length === 2, { what: "a second subscription" });
    expect(kv.current.opts.resumeFromRevision).toBe(12);
    stop();
  });

  it("a watch of some keys re-subscribes once per stream position (the last message may be a key it skips)", async () => {
    const kv = new FakeKv();
    const { watch } = await start(kv, "*", { after: 0, stallMs: 60 });
    w = watch;
    kv.last = 4; // an explain.<job> key the filter never delivers
    await waitFor(() => kv.subscriptions.length === 2, { what: "one re-subscribe" });
    // Ten stall periods later it may check again; well within them it has not.
    await new Promise((r) => setTimeout(r, 150));
    expect(kv.subscriptions.length).toBe(2);
    kv.last = 5;
    await waitFor(() => kv.subscriptions.length === 3, { what: "a re-subscribe for the new position" });
    await expect(watch.catchUp(100)).rejects.toThrow(/every key/);
    stop();
  });

  it("catchUp: at once when delivered, waits for delivery, WatchBehind when it does not come", async () => {
    const kv = new FakeKv();
    kv.last = 2;
    const { watch } = await start(kv, ">", { after: 2, stallMs: 60_000 });
    w = watch;
    await watch.catchUp(50); // nothing written since the load
    kv.last = 4;
    const waiting = watch.catchUp(5_000);
    let done = false;
    void waiting.then(() => {
      done = true;
    });
    kv.current.push(3);
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false); // 3 of 4
    kv.current.push(4);
    await waiting;
    kv.last = 5;
    const behind = await watch.catchUp(30).catch((e: unknown) => e);
    expect(behind).toBeInstanceOf(WatchBehind);
    expect(behind).toMatchObject({ bucket: "capa_allocs", delivered: 4, target: 5 });
    stop();
  });
  it("a stream that came back behind what it delivered (writes lost in a restart) is replayed whole, marked", async () => {
    const kv = new FakeKv();
    kv.last = 10;
    const { watch, seen } = await start(kv, ">", { after: 10, stallMs: 60_000 });
    w = watch;
    kv.current.push(11);
    kv.current.push(12);
    await waitFor(() => seen.length === 2, { what: "two entries" });
    const before = kv.current;
    kv.last = 8; // every server restarted from what each had flushed: 9–12 are gone, new writes reuse them
    const caughtUp = watch.catchUp(5_000);
    await waitFor(() => kv.subscriptions.length === 2, { what: "the replay's subscription" });
    expect(before.stopped).toBe(true);
    expect(kv.current.opts.resumeFromRevision).toBe(1);
    kv.current.push(3, "a");
    kv.current.push(8, "b");
    await caughtUp;
    kv.current.push(9, "c"); // written after the restart: live again
    await waitFor(() => seen.length === 5, { what: "the replay and a new write" });
    expect(seen.slice(2).map((e) => [e.key, e.revision, e.replayed ?? false])).toEqual([
      ["a", 3, true],
      ["b", 8, true],
      ["c", 9, false],
    ]);
    stop();
  });
});
