import { connectBus } from "@capa/bus";
import { parseUsd } from "@capa/domain";
import {
  decodeLedgerEntry,
  encodeLedgerEntry,
  generateSigningKey,
  LEDGER_STREAM,
  type Ledger,
  ledgerFilters,
  openLedger,
  publishOnce,
  readAll,
  verifyReceipt,
} from "@capa/ledger";
import { type Settlement, settlementEntries } from "@capa/market";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const FEE_BPS = 1_000;
const T0 = Date.UTC(2025, 5, 1, 12);
const signingKey = generateSigningKey();

function settlement(overrides: Partial<Settlement> = {}): Settlement {
  return {
    tenant: "acme",
    jobId: "j1",
    taskId: "j1-0",
    epoch: 1,
    agentId: "agent-eu-1",
    provider: "gpu-co",
    region: "eu-west",
    gpuModel: "H100-80GB",
    gpuIndices: [0],
    pricePerGpuHour: parseUsd("2.49"),
    startMs: T0,
    endMs: T0 + 3_000,
    gpuMilliseconds: 3_000,
    interruptible: false,
    endReason: "succeeded",
    ...overrides,
  };
}

describe("ledger on a real nats-server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ledger: Ledger;
  const open = (conn: NatsConnection, feeBasisPoints = FEE_BPS) =>
    openLedger(conn, { feeBasisPoints, signingKey, now: () => T0 + 10_000 });

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "ledger-test" });
    ledger = await open(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("creates CAPA_LEDGER idempotently: file storage, a duplicate window of at least 2 minutes, append-only", async () => {
    await open(nc);
    const info = await (await jetstreamManager(nc)).streams.info(LEDGER_STREAM);
    expect(info.config).toMatchObject({
      subjects: ["capa.v1.ledger.>"],
      storage: "file",
      deny_delete: true,
      deny_purge: true,
    });
    expect(info.config.duplicate_window).toBeGreaterThanOrEqual(2 * 60 * 1000 * 1_000_000);
  });

  it("stores an entry published twice with the same message id once; the second ack says duplicate", async () => {
    const entry = settlementEntries(settlement({ taskId: "dup-0", jobId: "dup" }), FEE_BPS).charge;
    const js = jetstream(nc);
    const subject = "capa.v1.ledger.charge.acme.dup-0.1";
    const first = await js.publish(subject, encodeLedgerEntry(entry), { msgID: entry.id });
    const second = await js.publish(subject, encodeLedgerEntry(entry), { msgID: entry.id });
    expect([first.duplicate, second.duplicate]).toEqual([false, true]);
    expect(second.seq).toBe(first.seq);
    const stored = await readAll(js, await jetstreamManager(nc), subject);
    expect(stored.map(decodeLedgerEntry)).toEqual([entry]);
  });

  it("refuses a replay after the duplicate window by the entry's own subject", async () => {
    const entry = settlementEntries(settlement({ taskId: "late-0", jobId: "late" }), FEE_BPS).charge;
    const js = jetstream(nc);
    const subject = "capa.v1.ledger.charge.acme.late-0.1";
    expect(await publishOnce(js, subject, entry.id, encodeLedgerEntry(entry))).toMatchObject({ stored: true });
    // A new message id is what JetStream sees once the window has passed: only the subject guard is left.
    expect(await publishOnce(js, subject, `${entry.id}#after-window`, encodeLedgerEntry(entry))).toEqual({
      stored: false,
      duplicateBy: "subject",
    });
    expect(await publishOnce(js, subject, entry.id, encodeLedgerEntry(entry))).toEqual({
      stored: false,
      duplicateBy: "msg-id",
    });
    expect(await readAll(js, await jetstreamManager(nc), subject)).toHaveLength(1);
  });

  it("settles an allocation into one charge, fee and payout with charge = fee + payout, and a valid receipt", async () => {
    const record = await ledger.recordSettlement(settlement({ taskId: "s1-0", jobId: "s1" }));
    // $2.49/GPU-h × 1 GPU × 3 s = 2075 µ$; fee 10 % rounded down = 207; payout 1868
    expect([record.entries.charge.amount, record.entries.fee.amount, record.entries.payout.amount]).toEqual([
      2_075, 207, 1_868,
    ]);
    expect(record.stored).toEqual({ charge: true, fee: true, payout: true, receipt: true });
    expect(record.receipt).toMatchObject({ receiptId: "rcpt:s1-0:1", amount: 2_075, fee: 207, payout: 1_868 });
    expect(verifyReceipt(record.receipt, ledger.signingKeyInfo().publicKeyPem)).toEqual({
      ok: true,
      keyId: signingKey.keyId,
    });
    expect(await ledger.isSettled("s1-0", 1)).toBe(true);
    expect(await ledger.isSettled("s1-0", 2)).toBe(false);
  });

  it("derives invoices and statements from the stream, and they agree to the micro", async () => {
    const tenant = "sums-tenant";
    const runs = [
      { taskId: "m1-0", jobId: "m1", agentId: "sums-a", gpuMilliseconds: 3_600_000, endMs: T0 + 1_000 },
      { taskId: "m1-1", jobId: "m1", agentId: "sums-b", gpuMilliseconds: 1_234_567, endMs: T0 + 2_000 },
      { taskId: "m2-0", jobId: "m2", agentId: "sums-a", gpuMilliseconds: 7_777, endMs: T0 + 3_000 },
    ];
    for (const run of runs) await ledger.recordSettlement(settlement({ tenant, provider: "sums-prov", ...run }));
    const invoice = await ledger.invoice(tenant, T0, T0 + 60_000);
    expect(invoice.lines.map((l) => [l.jobId, l.allocations])).toEqual([
      ["m1", 2],
      ["m2", 1],
    ]);
    const earnings = await ledger.earnings({ provider: "sums-prov" }, T0, T0 + 60_000);
    expect(earnings.lines).toHaveLength(3);
    expect(earnings.gross).toBe(invoice.total);
    expect(earnings.fee + earnings.payout).toBe(invoice.total);
    const perAgent = await Promise.all(
      ["sums-a", "sums-b"].map((agentId) => ledger.earnings({ agentId }, T0, T0 + 60_000)),
    );
    expect(perAgent.reduce((n, e) => n + e.gross, 0)).toBe(invoice.total);
    expect(await ledger.tenantCharges(tenant)).toBe(invoice.total);
    expect((await ledger.invoice(tenant, T0, T0 + 1_500)).total).toBe(parseUsd("2.49"));
    expect((await ledger.invoice("nobody", 0, T0 + 60_000)).lines).toEqual([]);
  });

  it("settles with no read first, and finds a settlement already made with direct reads only: no consumer is created per settlement", async () => {
    // The JetStream API is plain subjects in the account: a second connection sees every request made to it.
    const watcher = await connectBus({ servers: server.url, name: "ledger-test-api-watch" });
    const seen: string[] = [];
    const sub = watcher.subscribe("$JS.API.>", {
      callback: (_err, msg) => {
        seen.push(msg.subject);
      },
    });
    try {
      await watcher.flush();
      const s = settlement({ tenant: "direct", taskId: "d1-0", jobId: "d1", agentId: "direct-a" });
      const reads = () => seen.filter((subject) => subject.startsWith("$JS.API.STREAM.MSG.GET.")).length;
      const first = await ledger.recordSettlement(s);
      await nc.flush();
      await watcher.flush();
      // Not settled before: four writes, no read (every write is first-writer-wins and says what is stored).
      expect(reads()).toBe(0);
      const again = await ledger.recordSettlement(s);
      await nc.flush();
      await watcher.flush();
      expect(first.alreadySettled).toBe(false);
      expect(first.stored).toEqual({ charge: true, fee: true, payout: true, receipt: true });
      expect(again.alreadySettled).toBe(true);
      expect(again.stored).toEqual({ charge: false, fee: false, payout: false, receipt: false });
      expect(again.entries).toEqual(first.entries);
      expect(again.receipt).toEqual(first.receipt);
      expect(seen.filter((subject) => subject.startsWith("$JS.API.CONSUMER."))).toEqual([]);
      // Settled before: the stored entries and receipt are read back by their exact subjects.
      expect(reads()).toBeGreaterThan(0);
    } finally {
      sub.unsubscribe();
      await watcher.close();
    }
  });

  it("does not double-bill when the settlement is replayed by a restarted scheduler after a server restart", async () => {
    const s = settlement({ tenant: "replay", taskId: "r1-0", jobId: "r1", agentId: "replay-a" });
    const first = await ledger.recordSettlement(s);
    // The other tests keep using the first connection: let it come back before this test ends.
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === "reconnect") return;
    })();
    await server.restart();
    const nc2 = await connectBus({ servers: server.url, name: "ledger-test-restarted" });
    try {
      const restarted = await open(nc2);
      // re-metered after the restart, the observed window came out a little longer: the stored charge wins
      const again = await restarted.recordSettlement({ ...s, endMs: s.endMs + 400, gpuMilliseconds: 3_400 });
      expect(again.alreadySettled).toBe(true);
      expect(again.entries).toEqual(first.entries);
      expect(again.receipt).toEqual(first.receipt);
      const charges = await restarted.entries(ledgerFilters.chargesOf("replay"));
      const payouts = await restarted.entries(ledgerFilters.payoutsOf("replay-a"));
      expect(charges.map((e) => e.amount)).toEqual([2_075]);
      expect(payouts.map((e) => e.amount)).toEqual([1_868]);
      expect(
        await readAll(jetstream(nc2), await jetstreamManager(nc2), ledgerFilters.chargesOf("replay")),
      ).toHaveLength(1);
    } finally {
      await nc2.close();
      await reconnected;
    }
  });

  it("completes a settlement interrupted after its charge, splitting the stored charge even if the fee changed", async () => {
    const s = settlement({ tenant: "crash", taskId: "c1-0", jobId: "c1", agentId: "crash-a" });
    const charge = settlementEntries(s, FEE_BPS).charge;
    await ledger.append(charge); // the scheduler died here
    const resumed = await open(nc, 2_500);
    const record = await resumed.recordSettlement({ ...s, gpuMilliseconds: 2_900 });
    expect(record.stored).toEqual({ charge: false, fee: true, payout: true, receipt: true });
    expect(record.entries.charge.amount).toBe(2_075);
    expect(record.entries.fee.amount).toBe(518); // 25 % of 2075, rounded down
    expect(record.entries.fee.amount + record.entries.payout.amount).toBe(record.entries.charge.amount);
    expect(verifyReceipt(record.receipt, signingKey.publicKeyPem).ok).toBe(true);
  });

  it("keeps tenant names that are not subject tokens apart and intact", async () => {
    const tenant = "alice@example.com";
    await ledger.recordSettlement(settlement({ tenant, taskId: "e1-0", jobId: "e1" }));
    expect((await ledger.invoice(tenant, 0, T0 + 60_000)).total).toBe(2_075);
    expect((await ledger.invoice("alice@example", 0, T0 + 60_000)).total).toBe(0);
  });
});
