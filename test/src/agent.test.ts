/**
 * The agent against a real nats-server: adverts and heartbeats, running assigned tasks as processes, status / logs /
 * usage in the CAPA_TASKS and CAPA_LOGS streams, cancel by desired state, and refusal of impossible assignments.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import { connectBus, decode, encode, ensureStore, STREAMS, type Store, subjects, TypedKv } from "@capa/bus";
import type { AgentAssignments, LogChunk, TaskAssignment, TaskStatusReport, UsageReport } from "@capa/domain";
import { isAlive, type NatsServerHandle, startNatsServer, waitFor, writeFakeNvidiaSmi } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const AGENT_ID = "agent-it-1";
const REGION = "eu-west";

/** One subject read by an ordered consumer: its messages with their stream sequence, and a wait for a sequence. */
async function follow(store: Store, stream: string, subject: string) {
  const consumer = await store.js.consumers.get(stream, { filter_subjects: subject });
  const messages = await consumer.consume();
  const seen: { seq: number; data: Uint8Array }[] = [];
  let arrived = () => {};
  void (async () => {
    for await (const m of messages) {
      seen.push({ seq: m.seq, data: m.data });
      arrived();
    }
  })();
  return {
    seen,
    stop: () => messages.stop(),
    /** Resolves once `done()` holds, checked after each message. */
    async until(done: () => boolean): Promise<void> {
      while (!done())
        await new Promise<void>((r) => {
          arrived = r;
        });
    },
    /** Resolves once the message at stream sequence `seq` (0: none) or a later one has arrived. */
    upTo(seq: number): Promise<void> {
      return this.until(() => (seen.at(-1)?.seq ?? 0) >= seq);
    },
  };
}

/**
 * Every status, log and usage message of one task, from one ordered consumer per subject (a consumer has one filter
 * on nats-server 2.9): status and usage from CAPA_TASKS, logs from CAPA_LOGS. `kinds()` is the CAPA_TASKS order of
 * status and usage. A final status is taken only once the usage and logs stored by then have arrived, so the logs
 * are complete when `final()` answers (the agent publishes a task's logs before its final status).
 */
async function taskEvents(store: Store, taskId: string) {
  const statusSub = await follow(store, STREAMS.tasks, subjects.taskStatus(taskId, AGENT_ID));
  const usageSub = await follow(store, STREAMS.tasks, subjects.taskUsage(taskId, AGENT_ID));
  const logsSub = await follow(store, STREAMS.logs, subjects.taskLogs(taskId, AGENT_ID));
  const lastSeq = async (stream: string, subject: string) =>
    (await store.jsm.streams.getMessage(stream, { last_by_subj: subject }))?.seq ?? 0;
  let final: TaskStatusReport | undefined;
  void (async () => {
    for (let i = 0; ; i++) {
      await statusSub.until(() => statusSub.seen.length > i);
      const report = decode.status(statusSub.seen[i]!.data);
      if (!isFinal(report)) continue;
      await usageSub.upTo(await lastSeq(STREAMS.tasks, subjects.taskUsage(taskId, AGENT_ID)));
      await logsSub.upTo(await lastSeq(STREAMS.logs, subjects.taskLogs(taskId, AGENT_ID)));
      final = report;
      return;
    }
  })();
  const tasksOrder = () =>
    [
      ...statusSub.seen.map((m) => ({ kind: "status", ...m })),
      ...usageSub.seen.map((m) => ({ kind: "usage", ...m })),
    ].sort((a, b) => a.seq - b.seq);
  const logs = (): LogChunk[] => logsSub.seen.map((m) => decode.log(m.data));
  return {
    stop: () => {
      statusSub.stop();
      usageSub.stop();
      logsSub.stop();
    },
    kinds: () => tasksOrder().map((e) => e.kind),
    statuses: (): TaskStatusReport[] => statusSub.seen.map((m) => decode.status(m.data)),
    logs,
    usage: (): UsageReport[] => usageSub.seen.map((m) => decode.usage(m.data)),
    text: (stream?: string) =>
      logs()
        .filter((c) => !stream || c.stream === stream)
        .sort((a, b) => a.seq - b.seq)
        .map((c) => Buffer.from(c.data).toString())
        .join(""),
    final: () => final,
  };
}
const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected", "lost", "preempted"]);
const isFinal = (s: TaskStatusReport | undefined) => s !== undefined && FINAL.has(s.state);

function assignment(taskId: string, gpuIndices: number[], command: string[], extra: Partial<TaskAssignment> = {}) {
  return {
    taskId,
    jobId: `job-${taskId}`,
    replica: 0,
    gpuIndices,
    template: { command, env: { GREETING: "hello" }, workingDir: "", killGraceSeconds: 2 },
    epoch: 1,
    pricePerGpuHour: 2_490_000,
    tenant: "acme",
    assignedAtMs: Date.now(),
    stop: false,
    stopReason: "",
    ...extra,
  } satisfies TaskAssignment;
}

/** The next message on a subject. */
async function next(nc: NatsConnection, subject: string): Promise<Uint8Array> {
  for await (const m of nc.subscribe(subject, { max: 1 })) return m.data;
  throw new Error(`subscription to ${subject} ended without a message`);
}

describe("agent on a real nats-server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let store: Store;
  let agent: AgentHandle;
  let allocs: TypedKv<AgentAssignments>;
  let workDir: string;

  /** Replaces (or adds) tasks in the agent's desired state, as the scheduler's plan applier would (CAS). */
  async function assign(...tasks: TaskAssignment[]): Promise<void> {
    await allocs.mutate(AGENT_ID, (current) => {
      const others = (current?.tasks ?? []).filter((t) => !tasks.some((n) => n.taskId === t.taskId));
      return { agentId: AGENT_ID, tasks: [...others, ...tasks], updatedAtMs: Date.now() };
    });
  }

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "agent-test" });
    store = await ensureStore(nc);
    allocs = new TypedKv(store.allocs, { encode: encode.assignments, decode: decode.assignments });
    workDir = mkdtempSync(join(tmpdir(), "capa-agent-it-"));
    agent = await startAgent({
      nats: server.url,
      agentId: AGENT_ID,
      region: REGION,
      labels: { tier: "gold" },
      prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
      simulateGpus: "4xH100-80GB",
      workDir,
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      advertTtlSeconds: 5,
      usageIntervalMs: 300,
      republishIntervalMs: 300,
      logger: pino({ level: "silent" }),
    });
  });
  afterAll(async () => {
    await agent?.stop();
    await nc?.close();
    await server?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("publishes a simulated advert and heartbeats", async () => {
    const [advertData, heartbeatData] = await Promise.all([
      next(nc, subjects.advert(REGION, AGENT_ID)),
      next(nc, subjects.heartbeat(REGION, AGENT_ID)),
    ]);
    const advert = decode.advert(advertData);
    expect(advert).toMatchObject({
      agentId: AGENT_ID,
      region: REGION,
      zone: `${REGION}-a`,
      residency: "eu",
      simulated: true,
      ttlSeconds: 5,
      labels: { tier: "gold", "capa.io/simulated": "true" },
      prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 }],
    });
    expect(advert.gpus.map((g) => [g.index, g.uuid, g.model])).toEqual(
      [0, 1, 2, 3].map((i) => [i, `GPU-sim-${AGENT_ID}-${i}`, "H100-80GB"]),
    );
    expect(advert.cpuCores).toBeGreaterThan(0);
    expect(advert.memoryMib).toBeGreaterThan(0);
    expect(advert.sequence).toBeGreaterThan(0);
    expect(agent.advert().bootId).toBe(advert.bootId);
    const heartbeat = decode.heartbeat(heartbeatData);
    expect(heartbeat).toMatchObject({ agentId: AGENT_ID, bootId: advert.bootId, freeGpus: 4, runningTaskIds: [] });
  });

  it("runs an assigned task on its GPUs and reports running then succeeded, with logs and usage", async () => {
    const events = await taskEvents(store, "t-hello");
    await assign(assignment("t-hello", [1, 3], ["sh", "-c", 'echo "$GREETING"; echo "$CUDA_VISIBLE_DEVICES"; pwd']));
    const final = await waitFor(events.final, { what: "final status" });
    expect(final).toMatchObject({ state: "succeeded", exitCode: 0, agentId: AGENT_ID, epoch: 1, jobId: "job-t-hello" });
    expect(events.statuses().map((s) => s.state)).toEqual(["starting", "running", "succeeded"]);
    expect(final.startedAtMs).toBeGreaterThan(0);
    expect(final.finishedAtMs).toBeGreaterThanOrEqual(final.startedAtMs);
    expect(events.text("stdout")).toBe(`hello\n1,3\n${join(workDir, "tasks", "t-hello")}\n`);
    expect(events.logs().map((c) => c.seq)).toEqual(events.logs().map((_, i) => i + 1));
    // The final usage is in CAPA_TASKS before the final status (the tail of the logs is checked by final()).
    expect(events.kinds().at(-1)).toBe("status");
    const usage = events.usage().at(-1)!;
    expect(usage).toMatchObject({ final: true, gpus: 2, epoch: 1, startedAtMs: final.startedAtMs });
    expect(usage.gpuMilliseconds).toBe(2 * (usage.untilMs - usage.startedAtMs));
    events.stop();
  });

  it("re-publishes a final state while the desired state still lists the task", async () => {
    // Core subscribers see every publish, including the copies the stream dedupes by msgID.
    const again = decode.status(await next(nc, subjects.taskStatus("t-hello", AGENT_ID)));
    expect(again).toMatchObject({ taskId: "t-hello", state: "succeeded", epoch: 1 });
  });

  it("reports a failing command as failed with its exit code and keeps its stderr", async () => {
    const events = await taskEvents(store, "t-fail");
    await assign(assignment("t-fail", [0], ["sh", "-c", "echo broken >&2; exit 7"]));
    const final = await waitFor(events.final, { what: "final status" });
    expect(final).toMatchObject({ state: "failed", exitCode: 7, message: "exited with code 7" });
    expect(events.text("stderr")).toBe("broken\n");
    events.stop();
  });

  it("reports a program that cannot be started as failed, with the reason in its logs", async () => {
    const events = await taskEvents(store, "t-missing-bin");
    await assign(assignment("t-missing-bin", [], ["/nonexistent/bin/train"]));
    const final = await waitFor(events.final, { what: "final status" });
    expect(final).toMatchObject({ state: "failed", exitCode: 127, startedAtMs: 0 });
    expect(final.message).toMatch(/^cannot start \/nonexistent\/bin\/train: .*ENOENT/);
    expect(events.statuses().map((s) => s.state)).toEqual(["starting", "failed"]);
    expect(events.text("system")).toMatch(/cannot start \/nonexistent\/bin\/train/);
    events.stop();
  });

  it("cancels a running task when the desired state says stop, killing its whole process tree", async () => {
    const events = await taskEvents(store, "t-sleep");
    const sleeper = assignment("t-sleep", [0, 2], ["sh", "-c", 'sleep 300 & echo "pids=$$,$!"; wait']);
    await assign(sleeper);
    const pids = await waitFor(() => /pids=(\d+),(\d+)/.exec(events.text())?.slice(1).map(Number), {
      what: "task pids in the logs",
    });
    expect(pids.every(isAlive)).toBe(true);
    expect(events.statuses().map((s) => s.state)).toEqual(["starting", "running"]);
    const heartbeat = await waitFor(
      async () => {
        const hb = decode.heartbeat(await next(nc, subjects.heartbeat(REGION, AGENT_ID)));
        return hb.runningTaskIds.includes("t-sleep") && hb;
      },
      { what: "heartbeat listing the task" },
    );
    expect(heartbeat.freeGpus).toBe(2);
    const running = await waitFor(() => events.usage().find((u) => !u.final), { what: "periodic usage report" });
    expect(running).toMatchObject({ gpus: 2, sequence: 1 });
    expect(running.gpuMilliseconds).toBe(2 * (running.untilMs - running.startedAtMs));

    await assign({ ...sleeper, stop: true, stopReason: "cancelled by tenant" });
    const final = await waitFor(events.final, { what: "final status" });
    expect(final).toMatchObject({ state: "cancelled", signal: "SIGTERM", message: "cancelled by tenant" });
    await waitFor(() => !pids.some(isAlive), { what: "task processes gone" });
    events.stop();
  });

  it("reports a checkpoint the task signals through $CAPA_CHECKPOINT_FILE, in a running status and in usage", async () => {
    const events = await taskEvents(store, "t-ckpt");
    const file = join(workDir, "tasks", "t-ckpt", ".capa-checkpoint");
    const task = assignment(
      "t-ckpt",
      [1],
      ["sh", "-c", 'echo "file=$CAPA_CHECKPOINT_FILE"; touch "$CAPA_CHECKPOINT_FILE"; echo saved; exec sleep 300'],
    );
    await assign(task);
    await waitFor(() => events.text("stdout").includes("saved"), { what: "the task's checkpoint" });
    expect(events.text("stdout")).toBe(`file=${file}\nsaved\n`);
    const mtime = Math.floor(statSync(file).mtimeMs);
    const status = await waitFor(() => events.statuses().find((s) => (s.lastCheckpointMs ?? 0) > 0), {
      what: "a status report with the checkpoint",
    });
    expect(status).toMatchObject({ state: "running", epoch: 1, lastCheckpointMs: mtime });
    const usage = await waitFor(() => events.usage().find((u) => (u.lastCheckpointMs ?? 0) > 0), {
      what: "a usage report with the checkpoint",
    });
    expect(usage).toMatchObject({ final: false, lastCheckpointMs: mtime });
    // One status per checkpoint, not per poll.
    expect(events.statuses().map((s) => s.state)).toEqual(["starting", "running", "running"]);

    await assign({ ...task, stop: true, stopReason: "test done" });
    const final = await waitFor(events.final, { what: "final status" });
    expect(final).toMatchObject({ state: "cancelled", lastCheckpointMs: mtime });
    events.stop();
  });

  it("rejects assignments beyond its free GPUs or naming GPUs it does not have", async () => {
    const hog = await taskEvents(store, "t-hog");
    const tooMany = await taskEvents(store, "t-too-many");
    const missing = await taskEvents(store, "t-missing");
    const hogTask = assignment("t-hog", [0, 1, 2], ["sleep", "300"]);
    await assign(hogTask);
    await waitFor(() => hog.statuses().some((s) => s.state === "running"), { what: "hog running" });

    await assign(assignment("t-too-many", [3, 2], ["true"]), assignment("t-missing", [9], ["true"]));
    expect(await waitFor(tooMany.final, { what: "rejection" })).toMatchObject({
      state: "rejected",
      message: "needs 2 GPUs but only 1 are free",
    });
    expect(await waitFor(missing.final, { what: "rejection" })).toMatchObject({
      state: "rejected",
      message: "GPU index 9 does not exist on this agent (it has 0,1,2,3)",
    });
    expect(tooMany.statuses().map((s) => s.state)).toEqual(["rejected"]);

    // Removing it from the desired state stops it too.
    await allocs.mutate(AGENT_ID, (current) => ({
      ...current!,
      tasks: current!.tasks.filter((t) => t.taskId !== "t-hog"),
    }));
    expect(await waitFor(hog.final, { what: "hog stopped" })).toMatchObject({
      state: "cancelled",
      message: "no longer assigned to this agent",
    });
    for (const e of [hog, tooMany, missing]) e.stop();
  });

  it("advertises GPUs found by nvidia-smi, and marks them degraded while nvidia-smi keeps failing", async () => {
    const smi = writeFakeNvidiaSmi(
      [
        "0, GPU-1d4c6e8f-2b7a-4c39-9e51-7f0a3b8d2c64, NVIDIA H100 80GB HBM3, 81559, 0, 0, 29, Disabled, 535.129.03, 00000000:18:00.0",
        "1, GPU-9f2e7a13-6c0d-4b8e-a5f4-21c9d7e3b058, NVIDIA H100 80GB HBM3, 81559, 0, 0, 27, Disabled, 535.129.03, 00000000:2A:00.0",
        "",
      ].join("\n"),
    );
    const real = await startAgent({
      nats: server.url,
      agentId: "agent-it-smi",
      region: REGION,
      workDir: join(workDir, "smi"),
      advertIntervalMs: 500,
      heartbeatIntervalMs: 100,
      nvidiaSmi: { env: { ...process.env, PATH: `${smi.dir}:${process.env.PATH ?? ""}` } },
      logger: pino({ level: "silent" }),
    });
    try {
      const advert = decode.advert(await next(nc, subjects.advert(REGION, "agent-it-smi")));
      expect(advert.simulated).toBe(false);
      expect(advert.labels["capa.io/simulated"]).toBeUndefined();
      expect(advert.gpus.map((g) => [g.index, g.uuid, g.model, g.vramMib, g.health])).toEqual([
        [0, "GPU-1d4c6e8f-2b7a-4c39-9e51-7f0a3b8d2c64", "H100-80GB", 81559, "ok"],
        [1, "GPU-9f2e7a13-6c0d-4b8e-a5f4-21c9d7e3b058", "H100-80GB", 81559, "ok"],
      ]);
      // The driver stops answering.
      writeFileSync(
        smi.path,
        "#!/bin/sh\necho 'Unable to determine the device handle for GPU0000:18:00.0' >&2\nexit 15\n",
      );
      const degraded = await waitFor(
        async () => {
          const a = decode.advert(await next(nc, subjects.advert(REGION, "agent-it-smi")));
          return a.gpus.every((g) => g.health === "degraded") && a;
        },
        { what: "degraded advert" },
      );
      expect(degraded.gpus).toHaveLength(2);
    } finally {
      smi.remove();
      await real.stop();
    }
  });
});
