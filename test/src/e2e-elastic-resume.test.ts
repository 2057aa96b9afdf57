/**
 * Elastic gangs resume from the gang's checkpoint, end to end: a real nats-server, the scheduler over gRPC, three
 * in-process agents and one `capa agent` child process (SIGKILLed for the shrink), one GPU each, running a real
 * training loop in which only rank 0 saves checkpoints (as torchrun scripts do).
 *
 * A checkpointed elastic 2..4 gang starts at 2 while a blocker holds two GPUs; once rank 0 has a checkpoint in the
 * store the blocker is cancelled and the gang grows to 4: every worker of the new generation, the two added ones
 * included, starts with $CAPA_RESUME_FROM at rank 0's checkpoint and prints "resumed at step N" (the same N). Then
 * the child agent is SIGKILLed: the gang shrinks to 3 and every survivor resumes again from the gang's newest
 * checkpoint. The job's lineage names, for each of those runs, the rank-0 checkpoint it resumed from.
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
import { finalJob, getJob, type Harness, rpc, spec, stateName, submit } from "./scheduler-harness.js";

const REGION = "eu-west";
const TIMEOUT = 120_000;

interface Line {
  generation: number;
  rank: number;
  task: string;
  /** The step it resumed at (read from the checkpoint's content); undefined = it started fresh. */
  resumedAt: number | undefined;
  /** $CAPA_RESUME_FROM; "" = it started fresh. */
  from: string;
}

describe("elastic gang with checkpoints: every worker of a new generation resumes from the gang's checkpoint", () => {
  let c: ElasticCluster;
  let h: Harness;
  let root: string;

  beforeAll(async () => {
    assertCliBuilt();
    // The blocker job selects the pool=blocker agents (a and b), so the gang starts on resume-c and the child.
    const inProcess = ["resume-a", "resume-b", "resume-c"];
    c = await startElasticCluster({
      prefix: "capa-e2e-resume-",
      region: REGION,
      inProcess,
      blockers: 2,
      child: "resume-k",
    });
    ({ h, root } = c);
  });

  afterAll(() => c?.stop(), 60_000);

  const generationOf = (jobId: string, size: number, what: string) => generationWith(h, jobId, size, what, TIMEOUT);

  async function printed(jobId: string): Promise<Line[]> {
    const re = /gen=(\d+) rank=(\d+) task=(\S+) (?:resumed at step (\d+) from (\S+)|fresh)/g;
    return [...(await stdoutOf(h, jobId)).matchAll(re)].map((m) => ({
      generation: Number(m[1]),
      rank: Number(m[2]),
      task: m[3]!,
      resumedAt: m[4] === undefined ? undefined : Number(m[4]),
      from: m[5] ?? "",
    }));
  }

  /** Every worker of `generation` printed how it started (output reaches the log a little after RUNNING). */
  async function startedLines(jobId: string, generation: number, size: number): Promise<Line[]> {
    let mine: Line[] = [];
    await waitFor(
      async () => {
        mine = (await printed(jobId)).filter((l) => l.generation === generation);
        return mine.length >= size;
      },
      { timeoutMs: TIMEOUT, intervalMs: 200, what: `the ${size} workers of generation ${generation} printed` },
    );
    return mine;
  }

  /**
   * For each printed line of a generation: the checkpoint name its $CAPA_RESUME_FROM is a copy of, when that is the
   * worker's own resume dir on the agent the record places it on and the content it read matches (else the path).
   */
  function resumedCopies(g: pb.Job, lines: Line[]): string[] {
    return lines.map((l) => {
      const t = g.tasks.find((x) => x.id === l.task)!;
      const name = `step-${l.resumedAt}`;
      return l.from === join(root, t.agentId, "tasks", t.id, "resume", name) && t.resumeFrom?.name === name
        ? name
        : l.from;
    });
  }

  const stepOf = (name: string | undefined) => Number(name?.replace("step-", "") ?? 0);

  it("a grow 2 → 4 starts the added workers from rank 0's checkpoint; a shrink's survivors resume too", async () => {
    const done = join(root, "done");
    const blocker = await holdBlockers(h, 2, TIMEOUT);

    // A training loop: resumes from the step saved in $CAPA_RESUME_FROM/step, and rank 0 publishes a checkpoint every 5 steps (under
    // a dot-name, renamed into place) until the test says done.
    const worker = [
      "step=0",
      'id="gen=$CAPA_GENERATION rank=$RANK task=$CAPA_TASK_ID"',
      'if [ -n "$CAPA_RESUME_FROM" ]; then step=$(cat "$CAPA_RESUME_FROM/step"); echo "$id resumed at step $step from $CAPA_RESUME_FROM";',
      'else echo "$id fresh"; fi',
      `while [ ! -f ${done} ]; do`,
      "  step=$((step + 1))",
      '  if [ "$RANK" = 0 ] && [ $((step % 5)) -eq 0 ]; then',
      '    tmp="$CAPA_CHECKPOINT_DIR/.step-$step.tmp"',
      '    mkdir -p "$tmp" && echo "$step" > "$tmp/step" && mv "$tmp" "$CAPA_CHECKPOINT_DIR/step-$step"',
      "  fi",
      "  sleep 0.1",
      "done",
    ].join("\n");
    const { job: submitted } = await submit(
      h,
      spec(
        {
          kind: pb.JobKind.JOB_KIND_TRAINING,
          replicas: 0, // elastic.max
          allowFabricSpanning: true,
          elastic: { minReplicas: 2, maxReplicas: 4 },
          checkpoint: { dir: "", everySeconds: 1 },
        },
        ["sh", "-c", worker],
      ),
    );
    const jobId = submitted!.id;
    const rank0 = `${jobId}-0`;

    // 1. Two workers start fresh; rank 0's checkpoint of step 5 or later reaches the store.
    const first = await generationOf(jobId, 2, "generation of 2 workers running");
    const seen = await waitFor(
      async () => {
        const ckpt = (await getJob(h, jobId)).tasks[0]?.checkpoint;
        return ckpt?.copy === "stored" && stepOf(ckpt.name) >= 5 && ckpt;
      },
      { timeoutMs: TIMEOUT, intervalMs: 100, what: "a stored checkpoint of rank 0" },
    );
    const gen1 = await startedLines(jobId, first.rendezvous!.generation, 2);
    expect(gen1.map((l) => l.resumedAt)).toEqual([undefined, undefined]);

    // 2. The blocker goes: the gang grows to 4, and every worker (ranks 2 and 3 are new) resumes at one step.
    await rpc((cb) => h.jobs.cancelJob({ jobId: blocker, reason: "" }, cb));
    const grown = await generationOf(jobId, 4, "generation of 4 workers running");
    const gen4 = await startedLines(jobId, grown.rendezvous!.generation, 4);
    expect(gen4.map((l) => l.rank).sort()).toEqual([0, 1, 2, 3]);
    const grewAt = gen4[0]!.resumedAt!;
    expect(gen4.map((l) => l.resumedAt)).toEqual(gen4.map(() => grewAt));
    expect(grewAt).toBeGreaterThanOrEqual(stepOf(seen.name));
    expect(grewAt % 5).toBe(0);
    const writer = grown.tasks.find((t) => t.replica === 0)!.resumeFrom!.agentId;
    for (const t of grown.tasks.filter((x) => x.replica < 4))
      expect(t.resumeFrom).toMatchObject({ taskId: rank0, name: `step-${grewAt}`, copy: "stored", agentId: writer });
    // Each worker's $CAPA_RESUME_FROM is its own copy on its own agent (the content it printed is the step the
    // checkpoint's name says): copied out of rank 0's dir on the writing agent, fetched from the store elsewhere.
    // One agent wrote it and the four workers run on four agents, so at least one added worker got it over the store.
    expect(resumedCopies(grown, gen4)).toEqual(gen4.map(() => `step-${grewAt}`));
    const fetched = grown.tasks.filter((t) => t.replica >= 2 && t.replica < 4 && t.agentId !== writer);
    expect(fetched.length).toBeGreaterThanOrEqual(1);

    // 3. The child agent is SIGKILLed: the gang shrinks to 3, and the survivors resume from the newest checkpoint
    // (rank 0's of the 4-worker generation, wherever rank 0 ran: its copy is in the store before it is reported).
    await waitFor(async () => stepOf((await getJob(h, jobId)).tasks[0]?.checkpoint?.name) > grewAt, {
      timeoutMs: TIMEOUT,
      what: "rank 0 checkpointed in the 4-worker generation",
    });
    c.child.child.kill("SIGKILL");
    await exited(c.child.child);
    const shrunk = await generationOf(jobId, 3, "generation of 3 workers running after the SIGKILL");
    expect(shrunk.rendezvous!.history.at(-1)!.reason).toMatch(/^shrank 4 → 3: task \S+ lost/);
    const gen3 = await startedLines(jobId, shrunk.rendezvous!.generation, 3);
    const shrankAt = gen3[0]!.resumedAt!;
    expect(gen3.map((l) => l.resumedAt)).toEqual(gen3.map(() => shrankAt));
    expect(shrankAt).toBeGreaterThan(grewAt);
    expect(resumedCopies(shrunk, gen3)).toEqual(gen3.map(() => `step-${shrankAt}`));

    // 4. Done: the job succeeds; its lineage names, for every resumed run (task, epoch, agent), the rank-0
    // checkpoint it started from, and which run wrote it.
    writeFileSync(done, "");
    const final = await finalJob(h, jobId, TIMEOUT);
    expect(stateName(final.state)).toBe("SUCCEEDED");
    const lineage = final.lineage.map((l) => ({
      run: `${l.taskId}@${l.epoch} on ${l.agentId}`,
      from: `${l.resumedFrom!.taskId}@${l.resumedFrom!.epoch} on ${l.resumedFrom!.agentId}`,
      step: l.resumedFrom!.name,
    }));
    const runsOf = (g: pb.Job, lines: Line[], step: number) =>
      lines.map((l) => {
        const t = g.tasks.find((x) => x.id === l.task)!;
        const from = t.resumeFrom!;
        return {
          run: `${t.id}@${t.epoch} on ${t.agentId}`,
          from: `${rank0}@${from.epoch} on ${from.agentId}`,
          step: `step-${step}`,
        };
      });
    for (const run of [...runsOf(grown, gen4, grewAt), ...runsOf(shrunk, gen3, shrankAt)])
      expect(lineage).toContainEqual(run);
    expect(lineage.some((l) => l.run.includes(` on ${fetched[0]!.agentId}`) && l.from.endsWith(` on ${writer}`))).toBe(
      true,
    );
    console.log(
      `[elastic-resume] ${final.rendezvous!.history.map((g) => `${g.generation}:${g.size}`).join(" ")}; ` +
        `grew resumed at step ${grewAt}, shrank resumed at step ${shrankAt}; lineage ${final.lineage.length} runs`,
    );
  }, 300_000);
});
