import pino from "pino";
import { describe, expect, it } from "vitest";
import { AckAllTracker, type AckableReport, type ConsumerPending } from "./ack-all.js";

interface FakeReport extends AckableReport {
  acks: number;
  naks: number;
}

function report(seq: number, deliverySequence = seq): FakeReport {
  const r: FakeReport = {
    seq,
    info: { deliverySequence },
    acks: 0,
    naks: 0,
    ack: () => {
      r.acks++;
    },
    nak: () => {
      r.naks++;
    },
  };
  return r;
}

/** A consumer whose pending count the test answers by hand (each gate check waits for `answer`). */
function consumer() {
  const asks: ((p: ConsumerPending) => void)[] = [];
  return {
    pending: () => new Promise<ConsumerPending>((resolve) => asks.push(resolve)),
    async answer(p: ConsumerPending) {
      while (asks.length === 0) await new Promise((r) => setImmediate(r));
      asks.shift()!(p);
      await new Promise((r) => setImmediate(r));
    },
  };
}

function tracker(c: ReturnType<typeof consumer>) {
  // flushMs large: the tests flush by hand. The gate's re-check is asked at once; the test answers it.
  return new AckAllTracker({ pending: c.pending, logger: pino({ level: "silent" }), flushMs: 60_000, gateMs: 1 });
}

describe("AckAllTracker", () => {
  it("acks a batch with one ack of the highest report below the first one not handled yet", async () => {
    const c = consumer();
    const t = tracker(c);
    await c.answer({ numAckPending: 0, deliveredConsumerSeq: 0 });
    const rs = [1, 2, 3, 4, 5].map((s) => report(s));
    for (const r of rs) expect(t.delivered(r)).toBe(true);
    for (const r of [rs[0]!, rs[1]!, rs[3]!, rs[4]!]) t.handled(r);
    t.flush();
    expect(rs.map((r) => r.acks)).toEqual([0, 1, 0, 0, 0]);
    expect(t.held).toBe(3);
    t.handled(rs[2]!);
    t.flush();
    expect(rs.map((r) => r.acks)).toEqual([0, 1, 0, 0, 1]);
    expect(t.held).toBe(0);
    t.stop();
  });

  it("sends no ack while the server counts more pending deliveries than this subscription holds", async () => {
    const c = consumer();
    const t = tracker(c);
    const r = report(7, 3);
    t.delivered(r);
    t.handled(r);
    // 2 pending on the server, 0 held when it was asked: one of an earlier subscriber is still pending.
    await c.answer({ numAckPending: 2, deliveredConsumerSeq: 2 });
    t.flush();
    expect(r.acks).toBe(0);
    expect(t.acking).toBe(false);
    // The next check: pending 1 ≤ the 1 held here (the other one was redelivered here and handled, or acked).
    await c.answer({ numAckPending: 1, deliveredConsumerSeq: 3 });
    expect(t.acking).toBe(true);
    expect(r.acks).toBe(1);
    t.stop();
  });

  it("stops acking at a gap in the delivery sequence until the gate passes again", async () => {
    const c = consumer();
    const t = tracker(c);
    await c.answer({ numAckPending: 0, deliveredConsumerSeq: 0 });
    const a = report(1, 1);
    const b = report(3, 3); // delivery 2 went to another subscriber
    t.delivered(a);
    t.delivered(b);
    expect(t.acking).toBe(false);
    t.handled(a);
    t.handled(b);
    t.flush();
    expect(a.acks + b.acks).toBe(0);
    // Asked when only `a` was held: the server's 2 may include the other subscriber's delivery 2.
    await c.answer({ numAckPending: 2, deliveredConsumerSeq: 3 });
    expect(a.acks + b.acks).toBe(0);
    // Asked again with both held: nothing else is pending.
    await c.answer({ numAckPending: 2, deliveredConsumerSeq: 3 });
    expect([a.acks, b.acks]).toEqual([0, 1]);
    t.stop();
  });

  it("holds acks above a failed report until its redelivery is handled", async () => {
    const c = consumer();
    const t = tracker(c);
    await c.answer({ numAckPending: 0, deliveredConsumerSeq: 0 });
    const [a, b] = [report(1), report(2)];
    t.delivered(a);
    t.delivered(b);
    t.failed(a, 500);
    t.handled(b);
    t.flush();
    expect(a.naks).toBe(1);
    expect(a.acks + b.acks).toBe(0);
    const again = report(1, 3);
    expect(t.delivered(again)).toBe(true);
    t.handled(again);
    t.flush();
    expect(b.acks).toBe(1);
    expect(t.held).toBe(0);
    t.stop();
  });

  it("does not fold again a redelivery of a report handled here, and acks through its latest delivery", async () => {
    const c = consumer();
    const t = tracker(c);
    await c.answer({ numAckPending: 0, deliveredConsumerSeq: 0 });
    const first = report(1, 1);
    t.delivered(first);
    t.handled(first);
    const again = report(1, 2);
    expect(t.delivered(again)).toBe(false);
    t.flush();
    expect([first.acks, again.acks]).toEqual([0, 1]);
    t.stop();
  });

  it("acks what is handled when it stops, and nothing before the gate passed", async () => {
    const c = consumer();
    const t = tracker(c);
    const r = report(1);
    t.delivered(r);
    t.handled(r);
    t.stop();
    expect(r.acks).toBe(0);
    const c2 = consumer();
    const t2 = tracker(c2);
    await c2.answer({ numAckPending: 0, deliveredConsumerSeq: 0 });
    const r2 = report(1);
    t2.delivered(r2);
    t2.handled(r2);
    t2.stop();
    expect(r2.acks).toBe(1);
  });
});
