/**
 * The write coalescing of @capa/bus (write-coalesce.ts) against a real nats-server: messages sent across many
 * await hops of one turn of the event loop leave in one socket write, in order; a burst over the pending limit is
 * still written as it fills; requests (KV puts and gets) are answered as before; and what was published just
 * before a close reaches a subscriber.
 */
import { connectBus, type NatsConnection, writeCoalescing } from "@capa/bus";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let nats: NatsServerHandle;
let nc: NatsConnection;
let peer: NatsConnection;

/** Counts the writes to `conn`'s socket (every send of its transport) while `work` runs. */
async function socketWrites(conn: NatsConnection, work: () => Promise<void>): Promise<number> {
  const transport = (conn as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol
    .transport;
  const send = transport.send;
  let writes = 0;
  transport.send = function (this: unknown, frame: Uint8Array) {
    writes++;
    return send.call(this, frame);
  };
  try {
    await work();
  } finally {
    transport.send = send;
  }
  return writes;
}

/** Resolves with the payloads of the first `n` messages on `subject`. */
function receive(conn: NatsConnection, subject: string, n: number): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve) => {
    conn.subscribe(subject, {
      max: n,
      callback: (_err, m) => {
        got.push(m.string());
        if (got.length === n) resolve(got);
      },
    });
  });
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectBus({ servers: nats.url, name: "write-coalesce", asyncTraces: false });
  peer = await connectBus({ servers: nats.url, name: "write-coalesce-peer" });
});

afterAll(async () => {
  await nc?.close();
  await peer?.close();
  await nats?.stop();
});

describe("write coalescing", () => {
  it("is installed on this nats-core", () => {
    expect(writeCoalescing).toBe(true);
  });

  it("sends what one turn of the loop published across await hops in one socket write, in order", async () => {
    const got = receive(peer, "wc.hops", 50);
    await peer.flush();
    const writes = await socketWrites(nc, async () => {
      // One publish per microtask hop: the microtask flush of nats-core wrote each on its own.
      await new Promise<void>((done) => {
        setImmediate(async () => {
          for (let i = 0; i < 50; i++) {
            nc.publish("wc.hops", `m${i}`);
            await Promise.resolve();
          }
          done();
        });
      });
      await nc.flush();
    });
    expect(await got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    // The 50 messages share one write; the flush's PING may take its own.
    expect(writes).toBeLessThanOrEqual(2);
  });

  it("writes a burst over the pending limit as it fills, and all of it arrives in order", async () => {
    const n = 200;
    const body = "x".repeat(1024);
    const got = receive(peer, "wc.burst", n);
    await peer.flush();
    const writes = await socketWrites(nc, async () => {
      for (let i = 0; i < n; i++) nc.publish("wc.burst", `${i}:${body}`);
      // 200 KiB in one turn: over the 32 KiB limit several times, so it cannot wait for the end of the turn.
      expect((nc as unknown as { protocol: { outbound: { size(): number } } }).protocol.outbound.size()).toBeLessThan(
        64 * 1024,
      );
      await nc.flush();
    });
    expect((await got).map((m) => Number(m.split(":")[0]))).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(writes).toBeGreaterThan(1);
  });

  it("answers requests as before: KV puts and gets, many at once", async () => {
    const kv = await new Kvm(nc).create("wc_kv");
    const revisions = await Promise.all(Array.from({ length: 30 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    expect(new Set(revisions).size).toBe(30);
    const values = await Promise.all(Array.from({ length: 30 }, (_, i) => kv.get(`k${i}`)));
    expect(values.map((e) => e?.string())).toEqual(Array.from({ length: 30 }, (_, i) => `v${i}`));
  });

  it("writes what was published before a close", async () => {
    const closing = await connectBus({ servers: nats.url, name: "write-coalesce-closing" });
    const got = receive(peer, "wc.close", 3);
    await peer.flush();
    for (let i = 0; i < 3; i++) closing.publish("wc.close", `last${i}`);
    await closing.close();
    expect(await got).toEqual(["last0", "last1", "last2"]);
  });
});
