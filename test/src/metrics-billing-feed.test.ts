/**
 * The billing metrics' source on a real nats-server: BillingFeed reads CAPA_LEDGER from its first entry and sums
 * charges, fees and payouts by region and model in integer micros; receipts (same stream) are not money and are
 * not even delivered to it; entries written after it started are added as they arrive; a second feed started
 * later rebuilds the same totals.
 */
import { connectBus, type NatsConnection } from "@capa/bus";
import { encodeLedgerEntry, ensureLedgerStream, entrySubject } from "@capa/ledger";
import type { LedgerEntry } from "@capa/market";
import { BillingFeed } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer, waitFor } from "@capa/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silent } from "./scheduler-harness.js";

function entry(kind: LedgerEntry["kind"], taskId: string, amount: number, region = "eu-west"): LedgerEntry {
  return {
    id: `${kind}:${taskId}:1`,
    kind,
    tenant: "acme",
    jobId: "j1",
    taskId,
    epoch: 1,
    agentId: "a1",
    provider: "p1",
    region,
    gpuModel: "H100-80GB",
    gpuIndices: [0],
    gpuMilliseconds: 1000,
    pricePerGpuHour: 2_000_000,
    amount,
    feeBasisPoints: 1000,
    startMs: 1,
    endMs: 2,
    atMs: 2,
    interruptible: false,
    endReason: "succeeded",
    receiptId: "",
  } as LedgerEntry;
}

describe("BillingFeed: billing totals from the ledger stream", () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer({});
    nc = await connectBus({ servers: nats.url, name: "billing-feed-test" });
    await ensureLedgerStream(await jetstreamManager(nc));
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const publish = async (e: LedgerEntry) => {
    await jetstream(nc).publish(entrySubject(e), encodeLedgerEntry(e), { msgID: e.id });
  };
  const total = (feed: BillingFeed, kind: string, region = "eu-west") =>
    [...feed.totals()].filter((t) => t.kind === kind && t.region === region).reduce((n, t) => n + t.micros, 0);

  it("sums what was there, then what arrives; skips receipts; a later feed rebuilds the same totals", async () => {
    await publish(entry("charge", "t1", 1_001));
    await publish(entry("fee", "t1", 100));
    await publish(entry("payout", "t1", 901));
    await jetstream(nc).publish("capa.v1.ledger.receipt.acme.a1.t1.1", new Uint8Array([1, 2, 3]));
    const feed = new BillingFeed(jetstream(nc), silent);
    feed.start();
    try {
      await waitFor(() => total(feed, "payout") === 901, { what: "the existing entries counted" });
      expect(total(feed, "charge")).toBe(1_001);
      expect(total(feed, "fee")).toBe(100);
      await publish(entry("charge", "t2", 5_000, "us-east"));
      await waitFor(() => total(feed, "charge", "us-east") === 5_000, { what: "a new entry counted" });
      expect(total(feed, "charge")).toBe(1_001);
      // The receipt (stored between them) was never delivered: the consumer's filter names entries only.
      expect(feed.delivered).toBe(4);
      const later = new BillingFeed(jetstream(nc), silent);
      later.start();
      try {
        await waitFor(() => total(later, "charge", "us-east") === 5_000, { what: "the second feed caught up" });
        expect([...later.totals()].sort((a, b) => (a.kind + a.region < b.kind + b.region ? -1 : 1))).toEqual(
          [...feed.totals()].sort((a, b) => (a.kind + a.region < b.kind + b.region ? -1 : 1)),
        );
      } finally {
        later.stop();
      }
    } finally {
      feed.stop();
    }
  });
});
