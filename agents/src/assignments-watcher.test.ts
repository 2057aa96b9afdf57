import { encode } from "@capa/bus";
import type { AgentAssignments } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type AssignmentsKv, AssignmentsWatcher } from "./assignments-watcher.js";

interface FakeEntry {
  revision: number;
  operation: "PUT" | "DEL";
  value: Uint8Array;
}

const value = (n: number): AgentAssignments => ({ agentId: "a1", tasks: [], updatedAtMs: n });
const put = (revision: number, bytes: Uint8Array = encode.assignments(value(revision))): FakeEntry => ({
  revision,
  operation: "PUT",
  value: bytes,
});

/** A watch that yields `entries`, then ends (like a deleted consumer) unless `stayOpen`. */
function watchOf(entries: FakeEntry[], stayOpen: boolean) {
  let stop = () => {};
  const stopped = new Promise<void>((r) => {
    stop = r;
  });
  return {
    stop,
    async *[Symbol.asyncIterator]() {
      yield* entries;
      if (stayOpen) await stopped;
    },
  };
}

/** `gets` answers successive get() calls (the last one repeats); null = no such key. */
function fakeKv(watches: ReturnType<typeof watchOf>[], gets: (FakeEntry | null)[] = [null]) {
  let calls = 0;
  let getCalls = 0;
  const kv = {
    async watch() {
      const w = watches[calls++];
      if (!w) throw new Error("no more watches");
      return w;
    },
    async get() {
      return gets[Math.min(getCalls++, gets.length - 1)] ?? null;
    },
  };
  return { kv: kv as unknown as AssignmentsKv, calls: () => calls };
}

const logger = pino({ level: "silent" });

describe("AssignmentsWatcher", () => {
  it("watches again when a watch ends, and keeps the last good value over a malformed one", async () => {
    const seen: (number | undefined)[] = [];
    const fake = fakeKv([
      watchOf([put(1), put(2, new Uint8Array([0xff, 0xff, 0xff]))], false),
      watchOf([put(3), { revision: 4, operation: "DEL", value: new Uint8Array() }], true),
    ]);
    const watcher = new AssignmentsWatcher(
      async () => fake.kv,
      "a1",
      (v) => seen.push(v?.updatedAtMs),
      logger,
    );
    await watcher.start();
    await waitFor(() => seen.length === 4, { what: "four deliveries" });
    // No key at start: "nothing assigned" is delivered before any watch entry.
    expect(seen).toEqual([undefined, 1, 3, undefined]);
    expect(fake.calls()).toBe(2);
    await watcher.stop();
  });

  it("retries opening the bucket until it exists", async () => {
    let attempts = 0;
    const seen: number[] = [];
    const fake = fakeKv([watchOf([put(1)], true)], [put(1)]);
    const watcher = new AssignmentsWatcher(
      async () => {
        if (++attempts < 3) throw new Error("stream not found");
        return fake.kv;
      },
      "a1",
      (v) => v && seen.push(v.updatedAtMs),
      logger,
    );
    await watcher.start();
    await waitFor(() => seen.length === 1, { what: "first value" });
    expect(attempts).toBe(3);
    await watcher.stop();
  });

  it("reads the current value before watching, and only ever moves forward", async () => {
    const seen: number[] = [];
    // get at start: rev 5; the watch replays 5 then (late) 4; a resync finds 7, then the watch reaches 6 and 7.
    const watch = watchOf([put(5), put(4)], true);
    const fake = fakeKv([watch], [put(5), put(7)]);
    const watcher = new AssignmentsWatcher(
      async () => fake.kv,
      "a1",
      (v) => v && seen.push(v.updatedAtMs),
      logger,
    );
    await watcher.start();
    expect(seen).toEqual([5]);
    await watcher.resync();
    expect(seen).toEqual([5, 7]);
    await watcher.resync();
    expect(seen).toEqual([5, 7]);
    await watcher.stop();
  });
});
