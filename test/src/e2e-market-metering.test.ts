/**
 * Metering end to end: a real agent runs a 1-GPU job at a known locked price; the scheduler reads the agent's
 * usage reports back, meters them against its own observed window (the task's startedAt..finishedAt in its job
 * record) and settles into the ledger: one charge, one fee, one payout, one signed receipt per allocation.
 * Rounding (packages/market/README.md): charge = round_half_up(price × gpu-ms / 3 600 000), fee =
 * floor(charge × bps / 10 000), payout = charge − fee. A scheduler restart mid-job, followed by a replay of every
 * usage report and another restart, bills nothing twice.
 */
import { writeFileSync } from "node:fs";
import * as pb from "@capa/api";
import { encode, subjects } from "@capa/bus";
import { costForGpuMillis, parseUsd, splitFee } from "@capa/domain";
import { ledgerFilters, openBudgetStore, readAll, readUsageReports, receiptFromPb, verifyReceipt } from "@capa/ledger";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, rpc, spec, startHarness, submit } from "./scheduler-harness.js";
import { counter, invoice, type MarketAgents, startMarketAgents, waitForState } from "./scheduler-market.js";

const PRICE = parseUsd("2.49");
const FEE_BPS = 1_000; // the scheduler's default
const AGENT = "meter-eu-1";

/** The documented rule, from the window the scheduler recorded for the task. */
function expectedCharge(task: pb.Task): number {
  return costForGpuMillis(task.priceMicrosPerGpuHour, task.gpuIndices.length * (task.finishedAtMs - task.startedAtMs));
}

async function rawCount(h: Harness, filter: string): Promise<number> {
  return (await readAll(h.store.js, h.store.jsm, filter)).length;
}

async function settledInvoice(h: Harness, tenant: string, jobId: string): Promise<pb.GetInvoiceResponse> {
  return waitFor(
    async () => {
      const inv = await invoice(h, tenant, jobId);
      return inv.lines.length === 1 && inv;
    },
    { what: `the invoice line of ${jobId}` },
  );
}

describe("metering and settlement end to end", () => {
  let h: Harness;
  let agents: MarketAgents;

  beforeAll(async () => {
    h = await startHarness({ metricsPort: 0 });
    agents = await startMarketAgents(h, [{ agentId: AGENT, region: "eu-west", h100: "2.49" }]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("bills a ~3 s 1-GPU job once: charge = price × observed time, fee + payout = charge, job.spent set", async () => {
    const tenant = "meter-co";
    const { job } = await submit(h, spec({ name: "metered" }, ["sleep", "3"]), { tenant });
    const done = await waitForState(h, job!.id, "SUCCEEDED");
    const task = done.tasks[0]!;
    expect([task.agentId, task.priceMicrosPerGpuHour, task.gpuIndices.length]).toEqual([AGENT, PRICE, 1]);
    const charge = expectedCharge(task);
    const { fee, payout } = splitFee(charge, FEE_BPS);
    expect(charge).toBeGreaterThan(0);

    const inv = await settledInvoice(h, tenant, job!.id);
    if (process.env.CAPA_SAMPLE_INVOICE)
      writeFileSync(process.env.CAPA_SAMPLE_INVOICE, JSON.stringify(pb.GetInvoiceResponse.toJSON(inv), null, 2));
    expect(inv.totalMicros).toBe(charge);
    expect(inv.lines[0]).toMatchObject({ jobId: job!.id, allocations: 1, amountMicros: charge });
    expect(inv.lines[0]!.charges).toHaveLength(1);
    expect(inv.lines[0]!.charges[0]).toMatchObject({
      id: `charge:${task.id}:${task.epoch}`,
      priceMicrosPerGpuHour: PRICE,
      gpuMilliseconds: task.finishedAtMs - task.startedAtMs,
      startUnixMs: task.startedAtMs,
      endUnixMs: task.finishedAtMs,
      amountMicros: charge,
      feeBasisPoints: FEE_BPS,
      endReason: "succeeded",
    });
    // Exactly one of each in the stream itself, not only after the readers' de-duplication.
    expect(await rawCount(h, ledgerFilters.chargesOf(tenant))).toBe(1);
    expect(await rawCount(h, ledgerFilters.payoutsOf(AGENT))).toBe(1);
    expect(await rawCount(h, ledgerFilters.feesOf(AGENT))).toBe(1);
    const earnings = await rpc<pb.GetEarningsResponse>((cb) =>
      h.billing.getEarnings({ agentId: AGENT, provider: "", fromUnixMs: 0, toUnixMs: 0 }, cb),
    );
    expect(earnings.lines.map((l) => [l.taskId, l.grossMicros, l.feeMicros, l.payoutMicros])).toEqual([
      [task.id, charge, fee, payout],
    ]);
    const spent = await waitFor(
      async () => {
        const j = await getJob(h, job!.id);
        return j.spentMicros === charge && j;
      },
      { what: "job.spent set at settlement" },
    );
    expect(spent.spentMicros).toBe(charge);
    const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
    expect([limits.monthSettledMicros, limits.reservedMicros]).toEqual([charge, 0]);
  });

  it("signs receipts: GetReceipt verifies with GetSigningKey's key; a tampered copy does not", async () => {
    const receipts = await rpc<pb.ListReceiptsResponse>((cb) =>
      h.billing.listReceipts(
        { tenant: "meter-co", agentId: "", jobId: "", fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
        cb,
      ),
    );
    expect(receipts.receipts).toHaveLength(1);
    const id = receipts.receipts[0]!.receiptId;
    const got = await rpc<pb.GetReceiptResponse>((cb) => h.billing.getReceipt({ receiptId: id }, cb));
    const key = await rpc<pb.GetSigningKeyResponse>((cb) => h.billing.getSigningKey({}, cb));
    expect(key.algorithm).toBe("ed25519");
    const receipt = receiptFromPb(got.receipt!);
    expect(receipt.keyId).toBe(key.keyId);
    expect(verifyReceipt(receipt, key.publicKeyPem)).toEqual({ ok: true, keyId: key.keyId });
    const tampered = { ...receipt, amount: receipt.amount + 1, payout: receipt.payout + 1 };
    expect(verifyReceipt(tampered, key.publicKeyPem)).toMatchObject({ ok: false, reason: "bad-signature" });
    const moved = { ...receipt, gpuMilliseconds: receipt.gpuMilliseconds * 2 };
    expect(verifyReceipt(moved, key.publicKeyPem).ok).toBe(false);
  });

  it("a scheduler restart mid-job and a replay of every usage report do not bill twice", async () => {
    const tenant = "restart-co";
    const gate = `${agents.workDir}/gate-metering`;
    const { job } = await submit(h, spec({}, ["sh", "-c", `while [ ! -f ${gate} ]; do sleep 0.05; done`]), {
      tenant,
    });
    const taskId = `${job!.id}-0`;
    await waitForState(h, job!.id, "RUNNING");
    await waitFor(async () => (await readUsageReports(h.store.js, h.store.jsm, taskId, AGENT)).length > 0, {
      what: "a usage report before the restart",
    });
    await h.restartScheduler({ metricsPort: 0 });
    writeFileSync(gate, "");
    const done = await waitForState(h, job!.id, "SUCCEEDED");
    const charge = expectedCharge(done.tasks[0]!);
    expect((await settledInvoice(h, tenant, job!.id)).totalMicros).toBe(charge);

    // Replay: every report again, as new messages (new msg ids, so the stream stores them twice).
    const reports = await readUsageReports(h.store.js, h.store.jsm, taskId, AGENT);
    for (const r of reports)
      await h.store.js.publish(subjects.taskUsage(taskId, AGENT), encode.usage(r), { msgID: `replay-${r.sequence}` });
    expect((await readUsageReports(h.store.js, h.store.jsm, taskId, AGENT)).length).toBe(2 * reports.length);
    // Every job is final; wait until each is marked completely settled (`settled.<jobId>` in capa_budgets).
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: "", states: [], limit: 0, pageToken: "" }, cb),
    );
    const nc = await h.connect("metering-test-budgets");
    try {
      const budgets = await openBudgetStore(nc);
      await waitFor(
        async () => {
          const marked = await budgets.settledJobIds();
          return listed.jobs.every((j) => marked.has(j.id));
        },
        { what: "every job marked settled" },
      );
    } finally {
      await nc.close();
    }
    await h.restartScheduler({ metricsPort: 0 });
    // The new leader skips the settled jobs: not one allocation is read back from the ledger, none billed.
    const allocations = listed.jobs.flatMap((j) => j.tasks).filter((t) => t.epoch > 0 && t.finishedAtMs > 0).length;
    expect(allocations).toBeGreaterThan(0);
    const seen = await waitFor(
      async () => {
        const c = await counter(h, "capa_settlements_total", "outcome");
        const total = (c.get("skipped") ?? 0) + (c.get("already-settled") ?? 0) + (c.get("settled") ?? 0);
        return total >= allocations && c;
      },
      { what: "the recovery pass over every finished allocation" },
    );
    expect([seen.get("skipped"), seen.get("already-settled") ?? 0, seen.get("settled") ?? 0]).toEqual([
      allocations,
      0,
      0,
    ]);
    expect(await rawCount(h, ledgerFilters.chargesOf(tenant))).toBe(1);
    expect(await rawCount(h, ledgerFilters.payoutsOf(AGENT))).toBe(2); // this job's and the first test's
    expect((await invoice(h, tenant)).totalMicros).toBe(charge);
    const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
    expect([limits.monthSettledMicros, limits.reservedMicros]).toEqual([charge, 0]);
    expect((await getJob(h, job!.id)).spentMicros).toBe(charge);
  });
});
