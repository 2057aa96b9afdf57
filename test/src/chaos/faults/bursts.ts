/**
 * Faults injected during a submit burst through the HA client (every replica's address, retry on UNAVAILABLE):
 * - SIGKILL the scheduler leader once a quarter of the burst is acknowledged (`leaderKill`, `rounds` times);
 * - SIGKILL the home NATS server that leads `KV_capa_jobs` (`homeServerKill`);
 * - SIGKILL every NATS server of every region, then start them again on the same store dirs (`allNatsRestart`).
 * Afterwards every acknowledged job must exist and finish (acked-but-lost), and every task must have run exactly
 * once (double placements: a task with two runs; the allocation watcher also checks no task is live on two
 * agents at once).
 */

import { waitFor } from "@capa/testkit";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Figure, none, percentile, seconds, withinSeconds } from "../report.js";
import { type ChaosStack, sleep } from "../stack.js";
import { type Ack, type Burst, longestStall, markedSpec, runsOf, settleAcked, submitBurst } from "../workload.js";

export interface BurstOptions {
  jobs: number;
  concurrency: number;
  /** How long acknowledged jobs get to finish after the burst. */
  settleMs: number;
}

interface Checked {
  lost: string[];
  unfinished: string[];
  doubleRuns: string[];
  failedSubmits: number;
}

/** Every ack found and final; every task of a final job ran once (its pid file has one line). */
async function check(stack: ChaosStack, burst: Burst, settleMs: number): Promise<Checked> {
  const client = stack.client();
  try {
    const { lost, unfinished, jobs } = await settleAcked(client, burst.acks, settleMs);
    const doubleRuns: string[] = [];
    for (const job of jobs.values())
      for (const t of job.tasks) if (runsOf(stack.marks, t.id).length > 1) doubleRuns.push(t.id);
    return { lost, unfinished, doubleRuns, failedSubmits: burst.failures.length };
  } finally {
    client.close();
  }
}

/** Injects `fault` once `fraction` of the burst is acknowledged; resolves with the burst and the fault's time. */
async function burstWithFault(
  stack: ChaosStack,
  prefix: string,
  o: BurstOptions,
  fraction: number,
  fault: () => Promise<void>,
): Promise<{ burst: Burst; t0: number; faultDone: Promise<void> }> {
  const client = stack.client();
  let t0 = 0;
  let faultDone: Promise<void> = Promise.resolve();
  try {
    const burst = await submitBurst(client, {
      prefix,
      count: o.jobs,
      concurrency: o.concurrency,
      spec: () => markedSpec(stack.marks, 0),
      onAck: (_ack: Ack, acks: Ack[]) => {
        if (t0 === 0 && acks.length >= Math.floor(o.jobs * fraction)) {
          t0 = Date.now();
          faultDone = fault();
        }
      },
    });
    await faultDone;
    return { burst, t0, faultDone };
  } finally {
    client.close();
  }
}

export async function leaderKill(
  stack: ChaosStack,
  rounds: number,
  o: BurstOptions,
  log: (line: string) => void,
): Promise<Figure[]> {
  const FAULT = `SIGKILL the scheduler leader during a ${o.jobs}-job submit burst`;
  const nc = await stack.nats();
  const failovers: number[] = [];
  const writesBack: number[] = [];
  const totals = { lost: 0, unfinished: 0, doubles: 0, failed: 0, acked: 0 };
  for (let round = 1; round <= rounds; round++) {
    const before = await waitFor(() => stack.leader(nc), { timeoutMs: 60_000, what: "a leader" });
    const victim = stack.schedulers[before.index]!;
    let takeover: Promise<number> = Promise.resolve(Number.NaN);
    const { burst, t0 } = await burstWithFault(stack, `leader-kill-${round}-${Date.now()}`, o, 0.25, async () => {
      const killedAt = Date.now();
      await victim.kill("SIGKILL");
      takeover = waitFor(
        async () => {
          const now = await stack.leader(nc).catch(() => undefined);
          return now && now.index !== before.index ? now.acquiredAtMs - killedAt : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 50, what: "another replica taking the lease" },
      );
    });
    const failover = await takeover;
    failovers.push(failover);
    // The write path is back when a submit sent after the kill is acknowledged.
    const firstAfter = burst.acks.filter((a) => a.sentAtMs >= t0).sort((a, b) => a.ackedAtMs - b.ackedAtMs)[0];
    writesBack.push(firstAfter ? firstAfter.ackedAtMs - t0 : Number.NaN);
    await victim.start();
    const c = await check(stack, burst, o.settleMs);
    totals.lost += c.lost.length;
    totals.unfinished += c.unfinished.length;
    totals.doubles += c.doubleRuns.length;
    totals.failed += c.failedSubmits;
    totals.acked += burst.acks.length;
    log(
      `  round ${round}: ${victim.name} killed after ${Math.floor(o.jobs / 4)} acks; lease taken over after ${seconds(failover)}, first write acknowledged ${seconds(writesBack.at(-1)!)} after the kill; ${burst.acks.length}/${o.jobs} acked, ${c.failedSubmits} failed for good, lost ${c.lost.length}, unfinished ${c.unfinished.length}, run twice ${c.doubleRuns.length}`,
    );
  }
  return [
    withinSeconds(FAULT, `failover p99 (${rounds} kills; lease taken over)`, percentile(failovers, 99), 10),
    withinSeconds(FAULT, "writes acknowledged again p99", percentile(writesBack, 99), 10),
    none(FAULT, "acked-but-lost jobs", totals.lost, `of ${totals.acked} acked`),
    unfinished(FAULT, totals.unfinished, o.settleMs),
    none(FAULT, "double placements", totals.doubles),
  ];
}

/**
 * Acknowledged jobs still not final `settleMs` after the burst: a liveness figure (time-bounded, so judged by
 * `npm run chaos`, not by the CI suite).
 */
function unfinished(fault: string, count: number, settleMs: number): Figure {
  return { ...none(fault, `acked jobs not finished ${Math.round(settleMs / 1000)} s later`, count), kind: "latency" };
}

/** Every capa stream `server` leads (what its death makes elect): printed with the fault, never arranged. */
async function streamsLedBy(nc: NatsConnection, server: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const led: string[] = [];
  for await (const info of jsm.streams.list())
    if (info.cluster?.leader === server && /^(KV_capa_|CAPA_)/.test(info.config.name)) led.push(info.config.name);
  return led.sort();
}

/** The home server leading the jobs bucket's stream: killing it forces a stream leader election. */
async function jobsStreamLeader(nc: NatsConnection): Promise<string> {
  const info = await (await jetstreamManager(nc)).streams.info("KV_capa_jobs");
  if (!info.cluster?.leader) throw new Error("KV_capa_jobs has no leader");
  return info.cluster.leader;
}

export async function homeServerKill(
  stack: ChaosStack,
  o: BurstOptions,
  log: (line: string) => void,
): Promise<Figure[]> {
  const FAULT = "SIGKILL one home NATS server during a burst (R3)";
  const nc = await stack.nats();
  const name = await jobsStreamLeader(nc);
  const server = stack.sc.server(name);
  const led = await streamsLedBy(nc, name);
  const { burst, t0 } = await burstWithFault(stack, `nats-kill-${Date.now()}`, o, 0.25, () => server.kill("SIGKILL"));
  const stalled = longestStall(burst.acks, t0);
  await server.start();
  await stack.sc.waitForJetStream(60_000);
  const c = await check(stack, burst, o.settleMs);
  log(
    `  ${name} (leader of ${led.join(", ")}) killed after ${Math.floor(o.jobs / 4)} acks; longest stretch without an ack ${seconds(stalled)}; ${burst.acks.length}/${o.jobs} acked, ${c.failedSubmits} failed for good, lost ${c.lost.length}, unfinished ${c.unfinished.length}, run twice ${c.doubleRuns.length}`,
  );
  return [
    none(FAULT, "acked-but-lost jobs", c.lost.length, `of ${burst.acks.length} acked`),
    unfinished(FAULT, c.unfinished.length, o.settleMs),
    withinSeconds(FAULT, "stalled seconds", stalled, 5),
    none(FAULT, "tasks run twice", c.doubleRuns.length),
  ];
}

export async function allNatsRestart(
  stack: ChaosStack,
  o: BurstOptions,
  log: (line: string) => void,
): Promise<Figure[]> {
  const FAULT = "SIGKILL all NATS servers, restart from the same store dirs";
  let downMs = 0;
  const { burst } = await burstWithFault(stack, `nats-all-${Date.now()}`, o, 0.33, async () => {
    const t = Date.now();
    await Promise.all(stack.sc.servers.map((s) => s.kill("SIGKILL")));
    await sleep(1_000);
    await Promise.all(stack.sc.servers.map((s) => s.start()));
    await stack.sc.waitForMesh(90_000);
    await stack.sc.waitForJetStream(90_000);
    downMs = Date.now() - t;
  });
  await stack.waitForAgents(120_000);
  const c = await check(stack, burst, o.settleMs);
  log(
    `  all ${stack.sc.servers.length} servers SIGKILLed after ${Math.floor(o.jobs * 0.33)} acks and restarted (JetStream back after ${seconds(downMs)}); ${burst.acks.length}/${o.jobs} acked, ${c.failedSubmits} failed for good, lost ${c.lost.length}, unfinished ${c.unfinished.length}, run twice ${c.doubleRuns.length}`,
  );
  return [
    none(
      FAULT,
      "acked-but-lost jobs (sync: nats-server 2.9.10 default, fsync every 2 min; acks after an R3 quorum write)",
      c.lost.length,
      `of ${burst.acks.length} acked`,
    ),
    unfinished(FAULT, c.unfinished.length, o.settleMs),
    none(FAULT, "tasks run twice", c.doubleRuns.length),
  ];
}
