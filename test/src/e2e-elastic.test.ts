/**
 * Elastic gangs end to end: a real nats-server, the scheduler over gRPC and four real agents with one GPU each
 * (three in-process, one a `capa agent` child process so it can be SIGKILLed), running real processes.
 *
 * An elastic 2..4 training gang starts at 2 while a blocker job holds the other two GPUs, grows to 4 when the
 * blocker is cancelled, and shrinks to 3 when the child agent is SIGKILLed, never below 2. Every worker prints the
 * torchrun env it got; in every generation the printed WORLD_SIZE is the generation's size and the RANKs are
 * exactly 0..size-1. Each allocation that ran is charged exactly once.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited } from "./cli-harness.js";
import {
  type ElasticCluster,
  generationOf as generationWith,
  holdBlockers,
  startElasticCluster,
  stdoutOf,
} from "./elastic-harness.js";
import { finalJob, type Harness, rpc, spec, stateName, submit } from "./scheduler-harness.js";

const REGION = "eu-west";
const IN_PROCESS = ["elastic-a", "elastic-b", "elastic-c"];
const CHILD = "elastic-k";
const TIMEOUT = 90_000;

interface Printed {
  task: string;
  epoch: number;
  generation: number;
  rank: number;
  world: number;
  localRank: number;
  master: string;
}

describe("elastic gang with real agents: start at min, grow, shrink on SIGKILL", () => {
  let c: ElasticCluster;
  let h: Harness;
  let root: string;

  beforeAll(async () => {
    assertCliBuilt();
    // The blocker job selects the pool=blocker agents (a and b), so the gang starts on the other two.
    c = await startElasticCluster({
      prefix: "capa-e2e-elastic-",
      region: REGION,
      inProcess: IN_PROCESS,
      blockers: 2,
      child: CHILD,
    });
    ({ h, root } = c);
  });

  afterAll(() => c?.stop(), 60_000);

  const generationOf = (jobId: string, size: number, what: string) => generationWith(h, jobId, size, what, TIMEOUT);

  async function printed(jobId: string): Promise<Printed[]> {
    const re = /task=(\S+) epoch=(\d+) gen=(\d+) rank=(\d+) world=(\d+) local=(\d+) master=(\S+)/g;
    return [...(await stdoutOf(h, jobId)).matchAll(re)].map((m) => ({
      task: m[1]!,
      epoch: Number(m[2]),
      generation: Number(m[3]),
      rank: Number(m[4]),
      world: Number(m[5]),
      localRank: Number(m[6]),
      master: m[7]!,
    }));
  }

  /**
   * Waits until every worker of `generation` printed its line: a worker's output reaches the log stream a little
   * after it reports RUNNING, and the SIGKILLed agent's worker would otherwise lose a line it printed.
   */
  async function printedBy(jobId: string, generation: number, size: number): Promise<void> {
    await waitFor(async () => (await printed(jobId)).filter((l) => l.generation === generation).length >= size, {
      timeoutMs: TIMEOUT,
      intervalMs: 200,
      what: `the ${size} workers of generation ${generation} printed their env`,
    });
  }

  it("starts at 2 with 2 free slots, grows to 4, shrinks to 3 on an agent SIGKILL; env right in every generation", async () => {
    const done = join(root, "done");
    const blocker = await holdBlockers(h, 2, TIMEOUT);

    const worker =
      'echo "task=$CAPA_TASK_ID epoch=$CAPA_EPOCH gen=$CAPA_GENERATION rank=$RANK world=$WORLD_SIZE ' +
      `local=$LOCAL_RANK master=$MASTER_ADDR:$MASTER_PORT"; while [ ! -f ${done} ]; do sleep 0.1; done`;
    const { job: submitted } = await submit(
      h,
      spec(
        {
          kind: pb.JobKind.JOB_KIND_TRAINING,
          replicas: 0, // defaults to elastic.max
          allowFabricSpanning: true,
          elastic: { minReplicas: 2, maxReplicas: 4 },
        },
        ["sh", "-c", worker],
      ),
    );
    const jobId = submitted!.id;
    expect(submitted!.tasks).toHaveLength(4);

    // 1. Only two GPUs are free: it starts with min, on replicas 0 and 1; the others stand by.
    const started = await generationOf(jobId, 2, "generation of 2 workers running");
    expect(started.rendezvous!.generation).toBe(1);
    expect(new Set(started.tasks.filter((t) => t.replica < 2).map((t) => t.agentId))).toEqual(
      new Set(["elastic-c", CHILD]),
    );
    expect(started.tasks.filter((t) => t.replica >= 2).map((t) => t.state)).toEqual([
      pb.TaskState.TASK_STATE_PENDING,
      pb.TaskState.TASK_STATE_PENDING,
    ]);

    // 2. The blocker goes: two more GPUs free, the gang grows to 4 (restarting every worker).
    await rpc((cb) => h.jobs.cancelJob({ jobId: blocker, reason: "" }, cb));
    const grown = await generationOf(jobId, 4, "generation of 4 workers running");
    expect(grown.rendezvous!.history.at(-1)!.reason).toMatch(/^grew \d → 4/);
    const explained = await rpc<pb.ExplainJobResponse>((cb) => h.operator.explainJob({ jobId }, cb));
    expect(explained.explanation!.summary[0]).toMatch(/^elastic 2\.\.4: grow \d → 4 workers/);

    // 3. The child agent is SIGKILLed: its worker is lost, the gang shrinks to 3 instead of failing.
    await printedBy(jobId, grown.rendezvous!.generation, 4);
    c.child.child.kill("SIGKILL");
    await exited(c.child.child);
    const shrunk = await generationOf(jobId, 3, "generation of 3 workers running after the SIGKILL");
    const last = shrunk.rendezvous!.history.at(-1)!;
    expect(last.reason).toMatch(/^shrank 4 → 3: task \S+ lost/);
    expect(shrunk.tasks.filter((t) => t.replica < 3).every((t) => t.agentId !== CHILD)).toBe(true);
    expect(stateName(shrunk.state)).toBe("RUNNING");

    // 4. The workers finish: the job succeeds with the 3 of the last generation; the standby task is closed.
    writeFileSync(done, "");
    const final = await finalJob(h, jobId, TIMEOUT);
    expect(stateName(final.state)).toBe("SUCCEEDED");
    expect(final.tasks.filter((t) => t.replica < 3).every((t) => t.state === pb.TaskState.TASK_STATE_SUCCEEDED)).toBe(
      true,
    );
    expect(final.tasks[3]!.state).toBe(pb.TaskState.TASK_STATE_CANCELLED);

    // Every generation: never below min, WORLD_SIZE = its size, RANKs exactly 0..size-1, one master.
    const history = final.rendezvous!.history;
    expect(history.map((g) => g.generation)).toEqual(history.map((_, i) => i + 1));
    expect(history[0]!.size).toBe(2);
    expect(history.at(-1)!.size).toBe(3);
    expect(history.some((g) => g.size === 4)).toBe(true);
    const lines = await printed(jobId);
    for (const g of history) {
      expect(g.size).toBeGreaterThanOrEqual(2);
      const mine = lines.filter((l) => l.generation === g.generation);
      expect(mine.map((l) => l.world)).toEqual(mine.map(() => g.size));
      expect(mine.map((l) => l.rank).sort()).toEqual(Array.from({ length: g.size }, (_, i) => i));
      expect(new Set(mine.map((l) => l.master)).size).toBe(1);
      for (const l of mine) {
        expect(l.task).toBe(`${jobId}-${l.rank}`);
        expect(l.localRank).toBe(0);
      }
    }
    console.log(
      `[elastic] generations: ${history.map((g) => `${g.generation}:${g.size} (${g.reason.slice(0, 60)})`).join(" | ")}`,
    );

    // Billing: every allocation that ran (task + epoch, as the workers printed them) is charged exactly once.
    const ran = [...new Set(lines.map((l) => `charge:${l.task}:${l.epoch}`))].sort();
    let charges: string[] = [];
    await waitFor(
      async () => {
        const inv = await rpc<pb.GetInvoiceResponse>((cb) =>
          h.billing.getInvoice({ tenant: "acme", fromUnixMs: 0, toUnixMs: 0, jobId }, cb),
        );
        charges = (inv.lines[0]?.charges ?? []).map((c) => c.id);
        return charges.length >= ran.length;
      },
      { timeoutMs: TIMEOUT, what: "every allocation charged" },
    );
    expect(charges.sort()).toEqual(ran);
  });
});
