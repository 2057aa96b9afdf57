import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type JsPublisher, Outbox, type OutboxMessage } from "./outbox.js";

const logger = pino({ level: "silent" });
const msg = (msgID: string, kind: OutboxMessage["kind"] = "status", bytes = 1): OutboxMessage => ({
  subject: "s",
  data: new Uint8Array(bytes),
  msgID,
  kind,
});

/** Acknowledges in order, failing the first `failures` attempts. */
function flakyPublisher(failures: number) {
  const acked: string[] = [];
  let attempts = 0;
  const js: JsPublisher = {
    async publish(_subject, _data, { msgID }) {
      attempts++;
      if (attempts <= failures) throw new Error("timeout");
      acked.push(msgID);
    },
  };
  return { js, acked, attempts: () => attempts };
}

describe("Outbox", () => {
  it("delivers a task's messages in order, retrying a failed publish before the next", async () => {
    const p = flakyPublisher(3);
    const outbox = new Outbox(p.js, { logger, minBackoffMs: 1, maxBackoffMs: 2 });
    outbox.enqueue("t1", msg("log.1", "log"));
    outbox.enqueue("t1", msg("usage.1", "usage"));
    outbox.enqueue("t1", msg("succeeded"));
    expect(outbox.busy("t1")).toBe(true);
    expect(await outbox.drain(5_000)).toBe(true);
    expect(p.acked).toEqual(["log.1", "usage.1", "succeeded"]);
    expect(p.attempts()).toBe(6);
    expect(outbox.busy("t1")).toBe(false);
  });

  it("refuses logs over the byte cap but never status", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const acked: string[] = [];
    const outbox = new Outbox(
      {
        async publish(_s, _d, { msgID }) {
          await gate;
          acked.push(msgID);
        },
      },
      { logger, maxQueuedLogBytes: 10 },
    );
    expect(outbox.enqueue("t1", msg("log.1", "log", 6))).toBe(true);
    expect(outbox.enqueue("t1", msg("log.2", "log", 6))).toBe(false);
    expect(outbox.enqueue("t1", msg("failed", "status", 100))).toBe(true);
    release();
    expect(await outbox.drain(5_000)).toBe(true);
    expect(acked).toEqual(["log.1", "failed"]);
    // Room again once acknowledged.
    expect(outbox.enqueue("t1", msg("log.3", "log", 6))).toBe(true);
    await outbox.drain(5_000);
  });

  it("drain gives up after its timeout while NATS is unreachable; close abandons the queue", async () => {
    const outbox = new Outbox(
      {
        async publish() {
          throw new Error("no responders");
        },
      },
      { logger, minBackoffMs: 1, maxBackoffMs: 5 },
    );
    outbox.enqueue("t1", msg("running"));
    expect(await outbox.drain(50)).toBe(false);
    outbox.close();
    expect(outbox.enqueue("t1", msg("succeeded"))).toBe(false);
  });
});
