/**
 * Settlement of a job whose tasks end at different times, end to end (real nats-server, scheduler, agent): a
 * 2-replica batch job fails as soon as one replica exits 1, while its sibling still runs until the scheduler
 * stops it. Both allocations are billed, `job.spent` is their sum and the reservation is settled with it.
 */
import * as pb from "@capa/api";
import { isFinalTaskState, type TaskState } from "@capa/domain";
import { ledgerFilters, openBudgetStore, readAll } from "@capa/ledger";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, rpc, spec, startHarness, submit } from "./scheduler-harness.js";
import { invoice, type MarketAgents, startMarketAgents, waitForState } from "./scheduler-market.js";

const taskState = (t: pb.Task) => pb.taskStateToJSON(t.state).replace("TASK_STATE_", "").toLowerCase() as TaskState;

describe("settlement of a failed job's siblings", () => {
  let h: Harness;
  let agents: MarketAgents;

  beforeAll(async () => {
    h = await startHarness();
    agents = await startMarketAgents(h, [{ agentId: "settle-eu-1", region: "eu-west", h100: "2.49", gpus: 2 }]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("bills the sibling stopped after the job failed: both charges, job.spent = their sum, reservation settled", async () => {
    const tenant = "failed-co";
    const started = `${agents.workDir}/replica-1-started`;
    // Replica 0 fails once replica 1 runs (so both are placed); replica 1 runs until the scheduler stops it.
    const script =
      `if [ "$CAPA_REPLICA" = 0 ]; then while [ ! -f ${started} ]; do sleep 0.05; done; exit 1; ` +
      `else touch ${started}; exec sleep 30; fi`;
    const { job } = await submit(h, spec({ replicas: 2, gpusPerReplica: 1 }, ["sh", "-c", script]), { tenant });
    const failed = await waitForState(h, job!.id, "FAILED");
    expect(failed.tasks.every((t) => t.epoch > 0)).toBe(true);

    const nc = await h.connect("settlement-test-budgets");
    try {
      const budgets = await openBudgetStore(nc);
      // Settled once both allocations have ended (the sibling's stop is reported after the job failed).
      const done = await waitFor(
        async () => {
          // The marker first: the settler writes job.spent before the marker, so a record read after a marker is
          // seen holds the final spend (read the other way round, a record from just before the spend write
          // could pass with the marker written in between).
          const marked = (await budgets.settledMarker(job!.id)) !== undefined;
          const j = await getJob(h, job!.id);
          const ended = j.tasks.every((t) => isFinalTaskState(taskState(t)));
          return ended && marked && j;
        },
        { what: "both tasks ended and the job marked settled", timeoutMs: 30_000 },
      );
      expect(done.tasks.map(taskState)).toEqual(["failed", "cancelled"]);
      expect(await budgets.jobAllocations(job!.id)).toBeUndefined(); // the marker holds the charges now

      const inv = await invoice(h, tenant, job!.id);
      expect(inv.lines).toHaveLength(1);
      expect(inv.lines[0]!.allocations).toBe(2);
      const charges = inv.lines[0]!.charges;
      expect(charges.map((c) => c.id).sort()).toEqual(done.tasks.map((t) => `charge:${t.id}:${t.epoch}`).sort());
      const total = charges.reduce((s, c) => s + c.amountMicros, 0);
      expect(charges.find((c) => c.id.startsWith(`charge:${done.tasks[1]!.id}:`))!.amountMicros).toBeGreaterThan(0);
      expect(inv.totalMicros).toBe(total);
      expect((await readAll(h.store.js, h.store.jsm, ledgerFilters.chargesOf(tenant))).length).toBe(2);

      expect(done.spentMicros).toBe(total);
      expect((await budgets.settledMarker(job!.id))?.total).toBe(total);
      const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
      expect([limits.monthSettledMicros, limits.reservedMicros]).toEqual([total, 0]);
    } finally {
      await nc.close();
    }
  });
});
