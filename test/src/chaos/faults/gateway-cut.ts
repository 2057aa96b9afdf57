/**
 * Cut one region's gateways for `cutMs`, then restore them. The cut: every server of the region is restarted
 * at once with its generated config less its `gateway` block, so the region's cluster keeps working inside (its agents
 * stay connected to it) but nothing crosses to the home region; the restore restarts them with the original
 * config. Meanwhile:
 * - a sleeper runs on an agent of the cut region: it must not be declared lost or re-placed within the
 *   scheduler's partition grace (the whole region is silent, so its agents are held), and must not run twice;
 * - jobs pinned to the other regions are submitted and must all succeed during the cut (unaffected);
 * - after the restore the cut region's agents are ready again and the sleeper's state converges (still the same
 *   allocation, then cancelled cleanly).
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as pb from "@capa/api";
import { type Figure, none, seconds, withinSeconds } from "../report.js";
import { type ChaosStack, sleep } from "../stack.js";
import { jobWhen, markedSpec, runningSleeper, runsOf, settleAcked, submitBurst } from "../workload.js";

const GATEWAY_BLOCK = /\ngateway \{[\s\S]*?\n\}\n/;

export async function gatewayCut(
  stack: ChaosStack,
  o: { region: string; cutMs: number; jobsElsewhere: number },
  log: (line: string) => void,
): Promise<Figure[]> {
  const FAULT = `Cut ${o.region}'s gateways for ${Math.round(o.cutMs / 1000)} s, then restore`;
  const client = stack.client();
  const servers = stack.sc.servers.filter((s) => s.node.region === o.region);
  const originals = servers.map((s) => readFileSync(s.configPath, "utf8"));
  try {
    const { jobId, task } = await runningSleeper(client, stack.marks, o.region, `cut-sleeper-${Date.now()}`);

    // Every server at once, as a WAN cut drops every gateway link together. One after another, an agent moved
    // off a cut server onto one not yet cut stays heard for as long as the remaining restarts take (seconds on a
    // loaded machine): a partial cut, in which its region-mates' silence reads as dead machines (partition.ts).
    const cutAt = Date.now();
    for (const [i, s] of servers.entries()) writeFileSync(s.configPath, originals[i]!.replace(GATEWAY_BLOCK, "\n"));
    await Promise.all(servers.map((s) => s.kill("SIGTERM")));
    await Promise.all(servers.map((s) => s.start()));
    log(`  ${o.region} cut (${servers.length} servers restarted without gateways) in ${seconds(Date.now() - cutAt)}`);

    // During the cut: the sleeper must stay where it is, other regions must keep working.
    let falselyMoved = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const { job: j } = await client.getJob({ jobId });
        const t = j!.tasks[0]!;
        if (t.epoch !== task.epoch || t.agentId !== task.agentId || t.state !== pb.TaskState.TASK_STATE_RUNNING)
          falselyMoved = 1;
        await sleep(500);
      }
    })();
    const others = stack.regions.filter((r) => r !== o.region);
    const burst = await submitBurst(client, {
      prefix: `cut-elsewhere-${Date.now()}`,
      count: o.jobsElsewhere,
      concurrency: 2,
      spec: () => markedSpec(stack.marks, 0, others),
    });
    const elsewhere = await settleAcked(client, burst.acks, Math.max(10_000, o.cutMs - (Date.now() - cutAt) - 2_000));
    const failedElsewhere =
      burst.failures.length +
      elsewhere.lost.length +
      elsewhere.unfinished.length +
      [...elsewhere.jobs.values()].filter((j) => j.state !== pb.JobState.JOB_STATE_SUCCEEDED).length;
    const left = o.cutMs - (Date.now() - cutAt);
    if (left > 0) await sleep(left);
    watching = false;
    await watcher;

    const restoreAt = Date.now();
    for (const [i, s] of servers.entries()) {
      writeFileSync(s.configPath, originals[i]!);
      await s.kill("SIGTERM");
      await s.start();
    }
    await stack.sc.waitForMesh(60_000);
    await stack.waitForAgents(120_000);
    const after = await jobWhen(
      client,
      jobId,
      (j) => j.tasks[0]!.state === pb.TaskState.TASK_STATE_RUNNING,
      "the sleeper running after the restore",
    );
    const convergedMs = Date.now() - restoreAt;
    const sameAllocation = after.tasks[0]!.epoch === task.epoch && after.tasks[0]!.agentId === task.agentId;
    await client.cancelJob({ jobId, reason: "chaos cut over" });
    await jobWhen(client, jobId, (j) => j.state === pb.JobState.JOB_STATE_CANCELLED, "the sleeper cancelled", 60_000);
    const runs = runsOf(stack.marks, task.id).length;
    log(
      `  cut for ${seconds(restoreAt - cutAt)}: sleeper on ${task.agentId} ${falselyMoved ? "MOVED" : "kept its allocation"}; ${burst.acks.length}/${o.jobsElsewhere} jobs in ${others.join(",")} acked, ${failedElsewhere} not succeeded; after the restore every agent ready and the sleeper ${sameAllocation ? "on the same allocation" : "MOVED"} in ${seconds(convergedMs)}; it ran ${runs} time(s)`,
    );
    return [
      none(FAULT, `jobs in other regions not succeeded during the cut (of ${o.jobsElsewhere})`, failedElsewhere),
      none(
        FAULT,
        "cut region's tasks re-placed within the partition grace (120 s)",
        falselyMoved + (sameAllocation ? 0 : 1),
      ),
      withinSeconds(FAULT, "converged after the restore (agents ready, task current)", convergedMs, 30),
      none(FAULT, "double runs", Math.max(0, runs - 1)),
    ];
  } finally {
    // Never leave a region cut, whatever failed above.
    for (const [i, s] of servers.entries())
      if (readFileSync(s.configPath, "utf8") !== originals[i]) {
        writeFileSync(s.configPath, originals[i]!);
        await s.kill("SIGTERM");
        await s.start().catch(() => undefined);
      }
    client.close();
  }
}
