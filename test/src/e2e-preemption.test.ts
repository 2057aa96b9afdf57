/**
 * Preemption end to end: two interruptible, low-priority jobs hold every GPU of the only agent; one of them
 * checkpoints (touches $CAPA_CHECKPOINT_FILE) continuously, the other never does. A non-interruptible,
 * higher-priority job arrives. The engine preempts the checkpointing job, although it started first: it loses
 * the least work. The victim ignores SIGTERM, so it keeps its GPUs through its whole kill grace; meanwhile the
 * urgent job waits for it (no second preemption, no commit refused on busy GPUs) and then runs to SUCCEEDED on the
 * freed GPUs. The victim's task is recorded PREEMPTED (never FAILED) and placed again, and its first allocation is
 * billed for the time it ran, at its locked interruptible price, with end reason "preempted". The other job is
 * never touched.
 */
import * as pb from "@capa/api";
import { costForGpuMillis, parseUsd } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, spec, startHarness, submit } from "./scheduler-harness.js";
import { counter, invoice, type MarketAgents, startMarketAgents, waitForState } from "./scheduler-market.js";

/** An unlabelled counter's value from the scheduler's Prometheus endpoint. */
async function plainCounter(h: Harness, name: string): Promise<number> {
  const text = await (await fetch(`http://${h.scheduler.metricsAddress}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

describe("preemption end to end", () => {
  let h: Harness;
  let agents: MarketAgents;

  beforeAll(async () => {
    h = await startHarness({ metricsPort: 0 });
    agents = await startMarketAgents(h, [
      { agentId: "pre-1", region: "eu-west", h100: "2.49", h100Interruptible: "1.20", gpus: 4 },
    ]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("evicts the checkpointed interruptible job once for an urgent one, re-places it, and bills it only for the time it ran", async () => {
    const tenant = "preempt-co";
    const spot = (name: string, command: string) =>
      spec(
        {
          name,
          gpusPerReplica: 2,
          interruptible: true,
          priority: 0,
          template: {
            command: ["sh", "-c", command],
            env: {},
            workingDir: "",
            killGraceSeconds: 3,
            secretEnvNames: [],
            image: "",
          },
        },
        [],
      );
    // Checkpoints all the time, and holds on to its GPUs for the whole kill grace when stopped.
    const victim = await submit(
      h,
      spot("checkpointing", 'trap "" TERM; while :; do touch "$CAPA_CHECKPOINT_FILE"; sleep 0.1; done'),
      { tenant },
    );
    const victimId = victim.job!.id;
    const running = await waitForState(h, victimId, "RUNNING");
    const firstTask = running.tasks[0]!;
    expect(firstTask.priceMicrosPerGpuHour).toBe(parseUsd("1.20"));

    // Started later, never checkpoints: by start time alone it would be the cheaper victim.
    const bystander = await submit(h, spot("no-checkpoint", "exec sleep 300"), { tenant });
    const bystanderId = bystander.job!.id;
    const bystanderTask = (await waitForState(h, bystanderId, "RUNNING")).tasks[0]!;
    // The scheduler has a checkpoint of the victim newer than the bystander's start: the victim loses less.
    await waitFor(async () => (await getJob(h, victimId)).tasks[0]!.lastCheckpointUnixMs > bystanderTask.startedAtMs, {
      what: "a victim checkpoint newer than the bystander's start",
      timeoutMs: 30_000,
    });

    const conflictsBefore = await plainCounter(h, "capa_commit_conflicts_total");
    const preemptingBefore = (await counter(h, "capa_plans_total", "outcome")).get("preempting") ?? 0;
    const urgent = await submit(
      h,
      spec({ name: "urgent", gpusPerReplica: 2, interruptible: false, priority: 10 }, ["sh", "-c", "echo urgent"]),
      { tenant },
    );
    const done = await waitForState(h, urgent.job!.id, "SUCCEEDED");
    expect(done.tasks[0]!.priceMicrosPerGpuHour).toBe(parseUsd("2.49"));
    expect(done.tasks[0]!.gpuIndices).toEqual(firstTask.gpuIndices);
    // One preemption, and no plan refused at commit while the victim used its kill grace.
    expect((await counter(h, "capa_plans_total", "outcome")).get("preempting")).toBe(preemptingBefore + 1);
    expect(await plainCounter(h, "capa_commit_conflicts_total")).toBe(conflictsBefore);

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
    // The only victim: the bystander still runs its first allocation.
    const still = await getJob(h, bystanderId);
    expect(still.state).toBe(pb.JobState.JOB_STATE_RUNNING);
    expect(still.tasks[0]).toMatchObject({ epoch: bystanderTask.epoch, state: pb.TaskState.TASK_STATE_RUNNING });

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
