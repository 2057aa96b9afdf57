/**
 * Batched acks of task reports (scheduler/src/tasks/ack-all.ts) against a real nats-server and an
 * `ack_policy: "all"` consumer, as the status and usage consumers use it. The invariant checked throughout: the
 * consumer's ack floor never covers a report that no subscription handled. A subscription that stops without
 * handling what it received (a crash), or one that keeps pulling without handling (a deposed leader), leaves its
 * reports pending; the next subscription's ack-all must wait until they are redelivered to it and handled.
 */
import { connectBus, type NatsConnection } from "@capa/bus";
import { ackAllTrackerFor } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer, waitFor } from "@capa/testkit";
import { AckPolicy, DeliverPolicy, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
const logger = pino({ level: "silent" });

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectBus({ servers: nats.url, name: "status-acks" });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A stream and an ack-all consumer with a 1 s ack wait (redeliveries come quickly). */
async function setUp(name: string) {
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  await jsm.consumers.add(name, {
    durable_name: "c",
    ack_policy: AckPolicy.All,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 1_000_000_000,
    max_deliver: -1,
  });
  const js = jetstream(nc);
  const handled = new Set<number>();
  const violations: string[] = [];
  // Polls the ack floor: every sequence up to it must have been handled.
  const watch = setInterval(() => {
    void jsm.consumers
      .info(name, "c")
      .then((i) => {
        for (let s = 1; s <= i.ack_floor.stream_seq; s++)
          if (!handled.has(s)) violations.push(`ack floor ${i.ack_floor.stream_seq} covers unhandled ${s}`);
      })
      .catch(() => undefined);
  }, 20);
  const publish = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) await js.publish(`${name}.r`, new TextEncoder().encode(String(i)));
  };
  /** One subscription; `handles(seq)` false = received and never handled (it crashed or was deposed). */
  const subscribe = async (handles: (seq: number) => boolean) => {
    const info = await jsm.consumers.info(name, "c");
    const acks = ackAllTrackerFor(jsm, name, info, logger)!;
    const messages = await (await js.consumers.get(name, "c")).consume({ max_messages: 10 });
    const received: number[] = [];
    const loop = (async () => {
      for await (const m of messages) {
        received.push(m.seq);
        if (!acks.delivered(m) || !handles(m.seq)) continue;
        handled.add(m.seq);
        acks.handled(m);
      }
    })();
    return {
      received,
      acks,
      /** A crash: no more acks, nothing handled. */
      crash: async () => {
        await messages.close();
        await loop;
      },
      stop: async () => {
        await messages.close();
        await loop;
        acks.stop();
      },
    };
  };
  const drained = () =>
    waitFor(
      async () => {
        const i = await jsm.consumers.info(name, "c");
        return i.num_ack_pending === 0 && i.num_pending === 0 && i.ack_floor.stream_seq;
      },
      { what: "every report acked", timeoutMs: 30_000 },
    );
  return { handled, violations, publish, subscribe, drained, done: () => clearInterval(watch) };
}

describe("batched acks of task reports", () => {
  it("after a crash, acks nothing past the reports the crashed subscription held until they are handled", async () => {
    const t = await setUp("crash");
    await t.publish(1, 10);
    const first = await t.subscribe((seq) => seq <= 5);
    await waitFor(() => first.received.length >= 10, { what: "10 delivered" });
    first.acks.flush();
    await first.crash();
    await t.publish(11, 15);
    const second = await t.subscribe(() => true);
    const floor = await t.drained();
    await second.stop();
    t.done();
    expect(floor).toBe(15);
    expect([...t.handled].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(t.violations).toEqual([]);
  });

  it("with a second subscription that pulls and handles nothing (a deposed leader), acks only what was handled", async () => {
    const t = await setUp("deposed");
    const leader = await t.subscribe(() => true);
    const deposed = await t.subscribe(() => false);
    await t.publish(1, 40);
    await waitFor(() => leader.received.length + deposed.received.length >= 40, { what: "40 delivered" });
    // The deposed one got some (the server spreads pulls over both); it stops, as a deposed leader does.
    const lostThere = deposed.received.length;
    await deposed.crash();
    const floor = await t.drained();
    await leader.stop();
    t.done();
    expect(lostThere).toBeGreaterThan(0);
    expect(floor).toBe(40);
    expect(t.handled.size).toBe(40);
    expect(t.violations).toEqual([]);
  });
});
