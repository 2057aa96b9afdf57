/**
 * Checkpoints end to end: a real nats-server, the scheduler over gRPC and real agents running a real training
 * script (test/fixtures/train-steps.sh) that counts steps and publishes checkpoints into $CAPA_CHECKPOINT_DIR.
 * The agent reports the newest complete checkpoint (name, size, time) onto the job's task; a retried run starts
 * with $CAPA_RESUME_FROM pointing at a local copy, its output shows the resumed step, and the job record keeps the
 * lineage (which run resumed from which checkpoint of which run).
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited } from "./cli-harness.js";
import {
  finalJob,
  getJob,
  H100_PRICE,
  type Harness,
  logs,
  rpc,
  rpcError,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
} from "./scheduler-harness.js";
import { type AgentProcess, startAgentProcess, stopAgentProcess } from "./service-harness.js";

const TRAIN = new URL("../fixtures/train-steps.sh", import.meta.url).pathname;

describe("checkpoints with real agents", () => {
  let h: Harness;
  const agents: AgentHandle[] = [];
  let dir: string;

  beforeAll(async () => {
    // A small copy limit, so one test can show a checkpoint too large to copy between agents.
    h = await startHarness({ checkpointCopyMaxBytes: 64 * 1024 });
    dir = mkdtempSync(join(tmpdir(), "capa-e2e-ckpt-"));
    agents.push(
      await startAgent({
        ...(await h.agentNats("ckpt-agent-1", "eu-west")),
        agentId: "ckpt-agent-1",
        region: "eu-west",
        prices: [H100_PRICE],
        simulateGpus: "1xH100-80GB",
        labels: { pool: "ckpt-local" },
        workDir: join(dir, "ckpt-agent-1"),
        advertIntervalMs: 500,
        heartbeatIntervalMs: 200,
        advertTtlSeconds: 10,
        logger: silent,
      }),
    );
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return r.agents.some((a) => a.agentId === "ckpt-agent-1" && a.status === "ready");
      },
      { what: "agent registered" },
    );
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a retried training task resumes from its last complete checkpoint; the job keeps the lineage", async () => {
    const { job } = await submit(
      h,
      spec(
        {
          name: "resume-local",
          kind: pb.JobKind.JOB_KIND_TRAINING,
          nodeSelector: { pool: "ckpt-local" },
          retries: { max: 1, backoffSeconds: 0, on: ["failed"] },
          checkpoint: { dir: "", everySeconds: 60 },
          template: {
            command: ["sh", TRAIN],
            env: { STEPS: "6", EVERY: "3", FAIL_AT: "4", STEP_SECONDS: "0.05" },
            workingDir: "",
            killGraceSeconds: 2,
            image: "",
            secretEnvNames: [],
          },
        },
        [],
      ),
    );
    const done = await finalJob(h, job!.id, 60_000);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const out = logs(h, job!.id, false);
    await out.done;
    const stdout = out.text(pb.LogStream.LOG_STREAM_STDOUT);
    // The first run failed at step 4 after checkpointing step 3; the second started from step 3, not from 0.
    expect(stdout).toContain("failing at step 4");
    expect(stdout).toContain("resumed at step 3\nstep 4\nstep 5\nstep 6\ndone at step 6");
    expect(out.text(pb.LogStream.LOG_STREAM_SYSTEM)).toMatch(/resuming from checkpoint step-3 of attempt 1/);
    const task = done.tasks[0]!;
    // The newest complete checkpoint (the final run's), with its size and the run that wrote it.
    expect(task.checkpoint).toMatchObject({ name: "step-6", sizeBytes: 2, agentId: "ckpt-agent-1", attempt: 2 });
    expect(task.checkpoint!.createdAtMs).toBeGreaterThan(0);
    expect(task.resumedFrom).toMatchObject({ name: "step-3", attempt: 1, agentId: "ckpt-agent-1" });
    expect(done.lineage).toHaveLength(1);
    expect(done.lineage[0]).toMatchObject({ taskId: task.id, epoch: task.epoch, attempt: 2 });
    expect(done.lineage[0]!.resumedFrom).toMatchObject({ name: "step-3", attempt: 1 });
    expect(done.lineage[0]!.resumedFrom!.epoch).toBeLessThan(task.epoch);
  });

  it("a checkpoint over the copy limit is reported too-large with the limit, and kept on its agent", async () => {
    const script =
      'd="$CAPA_CHECKPOINT_DIR"; mkdir -p "$d/.big" && head -c 200000 /dev/zero > "$d/.big/weights" && ' +
      'mv "$d/.big" "$d/big-1"; sleep 1.5';
    const { job } = await submit(
      h,
      spec({ name: "too-large", nodeSelector: { pool: "ckpt-local" }, checkpoint: { dir: "", everySeconds: 0 } }, [
        "sh",
        "-c",
        script,
      ]),
    );
    const done = await finalJob(h, job!.id, 60_000);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const c = done.tasks[0]!.checkpoint!;
    expect(c).toMatchObject({ name: "big-1", sizeBytes: 200_000, copy: "too-large", object: "" });
    expect(c.copyNote).toMatch(/^copy of 19\d KiB is over the checkpoint store's limit of 64 KiB$/);
  });
});

describe("data mounts with a real agent", () => {
  let h: Harness;
  let agent: AgentHandle;
  let dir: string;
  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), "capa-e2e-data-"));
    agent = await startAgent({
      ...(await h.agentNats("data-agent-1", "eu-west")),
      agentId: "data-agent-1",
      region: "eu-west",
      prices: [H100_PRICE],
      simulateGpus: "1xH100-80GB",
      workDir: join(dir, "agent"),
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      logger: silent,
    });
    await waitFor(
      async () =>
        (
          await rpc<pb.ListAgentsResponse>((cb) => h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb))
        ).agents.some((a) => a.agentId === "data-agent-1" && a.status === "ready"),
      { what: "agent registered" },
    );
  });
  afterAll(async () => {
    await agent?.stop();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("stages a host path and a file:// URI before start; the task reads them from $CAPA_DATA_<NAME>", async () => {
    const data = join(dir, "datasets");
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "train.csv"), "x,y\n1,2\n");
    writeFileSync(join(dir, "vocab.txt"), "hello world\n");
    const { job } = await submit(
      h,
      spec(
        {
          name: "data",
          data: [
            { name: "train-set", source: data, target: "" },
            { name: "vocab", source: pathToFileURL(join(dir, "vocab.txt")).href, target: "" },
          ],
        },
        ["sh", "-c", 'cat "$CAPA_DATA_TRAIN_SET/train.csv" "$CAPA_DATA_VOCAB"'],
      ),
    );
    const done = await finalJob(h, job!.id, 60_000);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const out = logs(h, job!.id, false);
    await out.done;
    expect(out.text(pb.LogStream.LOG_STREAM_STDOUT)).toBe("x,y\n1,2\nhello world\n");
    expect(done.spec!.data.map((d) => d.source)).toEqual([data, pathToFileURL(join(dir, "vocab.txt")).href]);
  });

  it("a source that is not there fails the task naming the input; an unknown scheme is refused at submit", async () => {
    const { job } = await submit(
      h,
      spec({ data: [{ name: "gone", source: join(dir, "no-such"), target: "" }] }, ["true"]),
    );
    const done = await finalJob(h, job!.id, 60_000);
    expect(stateName(done.state)).toBe("FAILED");
    expect(done.tasks[0]!.message).toMatch(/cannot stage data gone: .*no-such: no such file or directory/);
    const bad = spec({ data: [{ name: "blob", source: "s3://bucket/train", target: "" }] }, ["true"]);
    const err = await rpcError((cb) => h.jobs.submitJob({ requestId: "", tenant: "acme", spec: bad }, cb));
    expect(err.details).toMatch(/spec\.data\[0\]\.source: no stager for scheme s3:\/\//);
  });
});

describe("checkpoints across agents: a SIGKILLed agent's training task resumes on another agent", () => {
  let h: Harness;
  let root: string;
  const agents: AgentProcess[] = [];

  /** A `capa agent` child process in eu-west with 1 GPU, labelled for this suite's jobs, once the scheduler lists it. */
  async function startAgentChild(id: string, price: string): Promise<ChildProcess> {
    const labels = ["--label", "pool=ckpt-move"];
    const agent = await startAgentProcess(h, root, id, "eu-west", price, "1xH100-80GB", labels);
    agents.push(agent);
    return agent.child;
  }

  beforeAll(async () => {
    assertCliBuilt();
    root = mkdtempSync(join(tmpdir(), "capa-e2e-ckpt-move-"));
    h = await startHarness({ agentTimeoutMs: 3_000 });
  });
  afterAll(async () => {
    for (const agent of agents) await stopAgentProcess(agent);
    await h?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it("killed mid-run, it resumes on the other agent from the checkpoint copied through the store", async () => {
    const first = await startAgentChild("ckpt-cheap", "2.00");
    await startAgentChild("ckpt-dear", "3.00");
    const { job } = await submit(
      h,
      spec(
        {
          name: "resume-elsewhere",
          kind: pb.JobKind.JOB_KIND_TRAINING,
          nodeSelector: { pool: "ckpt-move" },
          checkpoint: { dir: "", everySeconds: 1 },
          template: {
            command: ["sh", TRAIN],
            env: { STEPS: "60", EVERY: "5", STEP_SECONDS: "0.2" },
            workingDir: "",
            killGraceSeconds: 1,
            image: "",
            secretEnvNames: [],
          },
        },
        [],
      ),
    );
    const jobId = job!.id;
    // Running on the cheap agent with a checkpoint of step 10 or later copied into the store.
    const before = await waitFor(
      async () => {
        const t = (await getJob(h, jobId)).tasks[0];
        const step = Number(t?.checkpoint?.name.replace("step-", "") ?? 0);
        return t?.agentId === "ckpt-cheap" && t.checkpoint?.copy === "stored" && step >= 10 && t;
      },
      { timeoutMs: 60_000, what: "a stored checkpoint of step >= 10 on the cheap agent" },
    );
    first.kill("SIGKILL");
    expect((await exited(first)).signal).toBe("SIGKILL");

    const done = await finalJob(h, jobId, 120_000);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const task = done.tasks[0]!;
    expect(task.agentId).toBe("ckpt-dear");
    // The run on the other agent resumed from a checkpoint the killed agent wrote (the one seen, or a later one
    // it stored before it died), recorded in the lineage.
    expect(done.lineage).toHaveLength(1);
    const from = done.lineage[0]!.resumedFrom!;
    expect(done.lineage[0]).toMatchObject({ taskId: task.id, agentId: "ckpt-dear", epoch: task.epoch });
    expect(from).toMatchObject({ agentId: "ckpt-cheap", copy: "stored", epoch: before.epoch });
    const step = Number(from.name.replace("step-", ""));
    expect(step).toBeGreaterThanOrEqual(Number(before.checkpoint!.name.replace("step-", "")));
    const out = logs(h, jobId, false);
    await out.done;
    const stdout = out.text(pb.LogStream.LOG_STREAM_STDOUT);
    expect(stdout).toContain(`resumed at step ${step}\nstep ${step + 1}\n`);
    expect(stdout).toContain("done at step 60");
    expect(out.text(pb.LogStream.LOG_STREAM_SYSTEM)).toContain(`resuming from checkpoint ${from.name} of attempt 1`);
  }, 240_000);
});
