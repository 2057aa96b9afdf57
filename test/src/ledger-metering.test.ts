/**
 * Metering end to end over real JetStream: an agent's usage reports for a 1-GPU task that ran ~3 s land in
 * CAPA_TASKS; the scheduler reads them back when the task ends, meters them against its own observed window
 * and settles into the ledger. A scheduler restart mid-job (with the agent re-sending its reports) must not
 * bill twice.
 */
import { connectBus, encode, ensureStore, subjects } from "@capa/bus";
import { costForGpuMillis, parseUsd, splitFee, type UsageReport } from "@capa/domain";
import {
  AllocationNotFinishedError,
  type FinishedAllocation,
  generateSigningKey,
  ledgerFilters,
  openLedger,
  readUsageReports,
  settleAllocation,
  verifyReceipt,
} from "@capa/ledger";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const T0 = Date.UTC(2025, 7, 1, 9);
const PRICE = parseUsd("2.49");
const FEE_BPS = 1_200;
const signingKey = generateSigningKey();

const allocation: FinishedAllocation = {
  taskId: "jmeter-0",
  jobId: "jmeter",
  agentId: "agent-1",
  epoch: 1,
  gpus: 1,
  pricePerGpuHour: PRICE,
  placedAtMs: T0,
  // what the scheduler itself observed: RUNNING at +40 ms, the final status at +3 060 ms
  startedAtMs: T0 + 40,
  observedEndMs: T0 + 3_060,
  tenant: "acme",
  provider: "gpu-co",
  region: "eu-west",
  gpuModel: "H100-80GB",
  gpuIndices: [0],
  interruptible: false,
  endReason: "succeeded",
};

function usage(sequence: number, untilMs: number, final = false, overrides: Partial<UsageReport> = {}): UsageReport {
  const startedAtMs = T0 + 30;
  return {
    taskId: allocation.taskId,
    jobId: allocation.jobId,
    agentId: allocation.agentId,
    epoch: 1,
    startedAtMs,
    untilMs,
    gpus: 1,
    gpuMilliseconds: untilMs - startedAtMs,
    final,
    sequence,
    ...overrides,
  };
}

describe("metering into the ledger on a real nats-server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "metering-test" });
    await ensureStore(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const publishUsage = async (conn: NatsConnection, reports: UsageReport[]) => {
    const js = jetstream(conn);
    for (const r of reports) await js.publish(subjects.taskUsage(r.taskId, r.agentId), encode.usage(r));
  };

  it("bills one charge and one payout of price × observed time, once, across a scheduler restart and replayed reports", async () => {
    // the agent samples while running; one report comes from a stale epoch and is rejected by name
    await publishUsage(nc, [usage(1, T0 + 1_030), usage(2, T0 + 2_030), usage(1, T0 + 1_500, false, { epoch: 0 })]);

    // scheduler A is restarted mid-job (the server too); the agent re-sends everything and then its final report
    await server.restart();
    const nc2 = await connectBus({ servers: server.url, name: "metering-test-restarted" });
    try {
      await publishUsage(nc2, [usage(1, T0 + 1_030), usage(2, T0 + 2_030), usage(3, T0 + 3_030, true)]);
      const ledger = await openLedger(nc2, { feeBasisPoints: FEE_BPS, signingKey, now: () => T0 + 4_000 });
      const js = jetstream(nc2);
      const reports = await readUsageReports(js, await jetstreamManager(nc2), allocation.taskId, allocation.agentId);
      expect(reports).toHaveLength(6);

      const { metered, record } = await settleAllocation(ledger, allocation, reports, T0 + 4_000);
      // observed window [+40, +3 060] shortened by the agent's final report to +3 030: 2 990 GPU-ms
      expect(metered).toMatchObject({
        startMs: T0 + 40,
        endMs: T0 + 3_030,
        billableGpuMs: 2_990,
        basis: "final-report",
      });
      expect(metered.rejected.map((r) => r.reason)).toEqual(["stale-epoch"]);
      const charge = costForGpuMillis(PRICE, 2_990); // 2_068.0…  → 2068 µ$ (half-up)
      expect(charge).toBe(2_068);
      const { fee, payout } = splitFee(charge, FEE_BPS);

      // a second settle (e.g. the usage consumer and the status handler both noticed the end) changes nothing
      const again = await settleAllocation(ledger, allocation, [...reports, ...reports], T0 + 9_000);
      expect(again.record.alreadySettled).toBe(true);

      const charges = await ledger.entries(ledgerFilters.chargesOf("acme"));
      const payouts = await ledger.entries(ledgerFilters.payoutsOf("agent-1"));
      const fees = await ledger.entries(ledgerFilters.feesOf("agent-1"));
      expect(charges.map((e) => [e.id, e.amount])).toEqual([["charge:jmeter-0:1", charge]]);
      expect(payouts.map((e) => [e.id, e.amount])).toEqual([["payout:jmeter-0:1", payout]]);
      expect(fees.map((e) => e.amount)).toEqual([fee]);
      expect(fee + payout).toBe(charge);
      expect(record.receipt).toMatchObject({
        gpuMilliseconds: 2_990,
        amount: charge,
        startMs: T0 + 40,
        endMs: T0 + 3_030,
      });
      expect(verifyReceipt(record.receipt, signingKey.publicKeyPem).ok).toBe(true);
    } finally {
      await nc2.close();
    }
  });

  it("refuses to settle an allocation the scheduler has not seen end", async () => {
    const nc3 = await connectBus({ servers: server.url, name: "metering-test-3" });
    try {
      const ledger = await openLedger(nc3, { feeBasisPoints: FEE_BPS, signingKey, now: () => T0 });
      await expect(settleAllocation(ledger, { ...allocation, observedEndMs: 0 }, [], T0)).rejects.toBeInstanceOf(
        AllocationNotFinishedError,
      );
    } finally {
      await nc3.close();
    }
  });

  it("settles an allocation that never ran at zero, dated when it ended", async () => {
    const nc4 = await connectBus({ servers: server.url, name: "metering-test-4" });
    try {
      const ledger = await openLedger(nc4, { feeBasisPoints: FEE_BPS, signingKey, now: () => T0 });
      const never = { ...allocation, taskId: "jnever-0", jobId: "jnever", startedAtMs: 0, endReason: "cancelled" };
      const { record } = await settleAllocation(ledger, never, [], T0 + 5_000);
      expect(record.entries.charge).toMatchObject({ amount: 0, gpuMilliseconds: 0, atMs: T0 + 3_060 });
      expect(verifyReceipt(record.receipt, signingKey.publicKeyPem).ok).toBe(true);
    } finally {
      await nc4.close();
    }
  });
});
