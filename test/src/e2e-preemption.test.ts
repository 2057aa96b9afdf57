/**
 * Preemption end to end: an interruptible, low-priority job holds every GPU of the only agent; a
 * non-interruptible, higher-priority job arrives. The engine plans a preemption, the scheduler stops the victim
 * (its task is recorded PREEMPTED and the job goes back to waiting, never FAILED), the urgent job runs to
 * SUCCEEDED on the freed GPUs, the victim is placed again afterwards, and the victim's first allocation is billed
 * for the time it ran, at its locked interruptible price, with end reason "preempted".
 */
import * as pb from "@capa/api";
import { costForGpuMillis, parseUsd } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, spec, startHarness, submit } from "./scheduler-harness.js";
import { invoice, type MarketAgents, startMarketAgents, waitForState } from "./scheduler-market.js";

describe("preemption end to end", () => {
  let h: Harness;
  let agents: MarketAgents;

  beforeAll(async () => {
    h = await startHarness();
    agents = await startMarketAgents(h, [
      { agentId: "pre-1", region: "eu-west", h100: "2.49", h100Interruptible: "1.20", gpus: 2 },
    ]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("evicts an interruptible job for an urgent one, re-places the victim, and bills it only for the time it ran", async () => {
    const tenant = "preempt-co";
    const victim = await submit(
      h,
      spec({ name: "spot", gpusPerReplica: 2, interruptible: true, priority: 0 }, ["sleep", "300"]),
      { tenant },
    );
    const victimId = victim.job!.id;
    const running = await waitForState(h, victimId, "RUNNING");
    const firstTask = running.tasks[0]!;
    expect(firstTask.priceMicrosPerGpuHour).toBe(parseUsd("1.20"));

    const urgent = await submit(
      h,
      spec({ name: "urgent", gpusPerReplica: 2, interruptible: false, priority: 10 }, ["sh", "-c", "echo urgent"]),
      { tenant },
    );
    const done = await waitForState(h, urgent.job!.id, "SUCCEEDED");
    expect(done.tasks[0]!.priceMicrosPerGpuHour).toBe(parseUsd("2.49"));

    // The victim was not failed: it waits or runs again under a new epoch.
    const again = await waitFor(
      async () => {
        const job = await getJob(h, victimId);
        const t = job.tasks[0]!;
        return job.state === pb.JobState.JOB_STATE_RUNNING && t.epoch > firstTask.epoch && job;
      },
      { what: "the victim running again under a new epoch", timeoutMs: 30_000 },
    );
    expect(again.state).toBe(pb.JobState.JOB_STATE_RUNNING);

    // Its first allocation is settled once, as preempted, for the time it ran at the locked spot price.
    const charge = await waitFor(
      async () => {
        const inv = await invoice(h, tenant, victimId);
        return inv.lines[0]?.charges.find((c) => c.epoch === firstTask.epoch);
      },
      { what: "the victim's first allocation settled" },
    );
    expect(charge.endReason).toBe("preempted");
    expect(charge.priceMicrosPerGpuHour).toBe(parseUsd("1.20"));
    expect(charge.endUnixMs).toBeGreaterThan(charge.startUnixMs);
    expect(charge.amountMicros).toBe(costForGpuMillis(parseUsd("1.20"), 2 * (charge.endUnixMs - charge.startUnixMs)));
    expect(charge.gpuMilliseconds).toBe(2 * (charge.endUnixMs - charge.startUnixMs));
  });
});
