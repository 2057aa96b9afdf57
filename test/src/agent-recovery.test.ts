/**
 * The agent across failures: its own restart (no task runs twice; tasks from a crashed previous life are killed and
 * reported lost) and a nats-server restart (the assignment watch resumes, reports still arrive).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { type AgentConfig, type AgentHandle, startAgent } from "@capa/agent";
import { BUCKETS, connectBus, decode, encode, ensureStore, STREAMS, type Store, subjects, TypedKv } from "@capa/bus";
import type { AgentAssignments, TaskAssignment, TaskStatusReport } from "@capa/domain";
import {
  groupMembers,
  isAlive,
  type NatsServerHandle,
  neverKilled,
  startNatsServer,
  startTicks,
  waitFor,
} from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const REGION = "us-east";
const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected", "lost", "preempted"]);

/** Status reports of one task, in stream order, from an ordered consumer. */
async function statuses(store: Store, taskId: string) {
  const consumer = await store.js.consumers.get(STREAMS.tasks, {
    filter_subjects: subjects.taskStatusAnyAgent(taskId),
  });
  const messages = await consumer.consume();
  const seen: TaskStatusReport[] = [];
  void (async () => {
    for await (const m of messages) seen.push(decode.status(m.data));
  })();
  return {
    all: () => seen,
    final: () => seen.find((s) => FINAL.has(s.state)),
    stop: () => messages.stop(),
  };
}

function assignment(taskId: string, gpuIndices: number[], script: string): TaskAssignment {
  return {
    taskId,
    jobId: `job-${taskId}`,
    replica: 0,
    gpuIndices,
    template: { command: ["sh", "-c", script], env: {}, workingDir: "", killGraceSeconds: 1 },
    epoch: 1,
    pricePerGpuHour: 0,
    tenant: "acme",
    assignedAtMs: Date.now(),
    stop: false,
    stopReason: "",
  };
}

const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean);

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

describe("agent recovery", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let store: Store;
  let allocs: TypedKv<AgentAssignments>;
  let workDir: string;
  const agents: AgentHandle[] = [];

  const config = (agentId: string): AgentConfig => ({
    nats: server.url,
    agentId,
    region: REGION,
    simulateGpus: "2xA100-40GB",
    workDir: join(workDir, agentId),
    advertIntervalMs: 500,
    heartbeatIntervalMs: 200,
    advertTtlSeconds: 5,
    logger: pino({ level: "silent" }),
  });
  async function start(agentId: string): Promise<AgentHandle> {
    const agent = await startAgent(config(agentId));
    agents.push(agent);
    return agent;
  }
  async function assign(agentId: string, ...tasks: TaskAssignment[]): Promise<void> {
    await allocs.mutate(agentId, (current) => ({
      agentId,
      tasks: [...(current?.tasks ?? []).filter((t) => !tasks.some((n) => n.taskId === t.taskId)), ...tasks],
      updatedAtMs: Date.now(),
    }));
  }

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "agent-recovery-test" });
    store = await ensureStore(nc);
    allocs = new TypedKv(store.allocs, { encode: encode.assignments, decode: decode.assignments });
    workDir = mkdtempSync(join(tmpdir(), "capa-agent-recovery-"));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("after a restart it neither re-runs finished tasks nor resumes the ones it stopped", async () => {
    const id = "agent-restart";
    const once = join(workDir, "once.log");
    const long = join(workDir, "long.log");
    const first = await start(id);
    const onceEvents = await statuses(store, "t-once");
    const longEvents = await statuses(store, "t-long");
    await assign(
      id,
      assignment("t-once", [0], `echo run >> ${once}`),
      assignment("t-long", [1], `echo $$ >> ${long}; sleep 300`),
    );
    expect(await waitFor(onceEvents.final, { what: "t-once done" })).toMatchObject({ state: "succeeded" });
    await waitFor(() => longEvents.all().some((s) => s.state === "running"), { what: "t-long running" });

    // Graceful stop: the long task is stopped and reported preempted (the scheduler re-places it).
    await first.stop();
    agents.splice(0);
    expect(await waitFor(longEvents.final, { what: "t-long final" })).toMatchObject({
      state: "preempted",
      message: "agent shutting down",
    });

    const longPid = Number(lines(long)[0]);
    await waitFor(() => !isAlive(longPid), { what: "t-long process gone" });

    const second = await start(id);
    expect(second.advert().bootId).not.toBe(first.advert().bootId);
    // Both tasks are still listed. A task assigned afterwards finishing proves the new agent has reconciled the
    // whole list at least once.
    const probe = await statuses(store, "t-probe");
    await assign(id, assignment("t-probe", [0], "true"));
    expect(await waitFor(probe.final, { what: "t-probe done" })).toMatchObject({ state: "succeeded" });
    expect(lines(once)).toEqual(["run"]);
    expect(lines(long)).toHaveLength(1);
    for (const e of [onceEvents, longEvents, probe]) e.stop();
  });

  it("kills what a crashed previous life left running and reports it lost", async () => {
    const id = "agent-crashed";
    // What a crash leaves behind: a detached task process group and its record without a final state.
    const orphan = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
    const pid = orphan.pid!;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const stateDir = join(workDir, id, "state");
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(
      join(stateDir, "t-orphan.json"),
      JSON.stringify({
        taskId: "t-orphan",
        jobId: "job-orphan",
        epoch: 4,
        bootId: "previous-boot",
        gpuIndices: [0],
        pid,
        pidStartTicks: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
        startedAtMs: Date.now() - 1000,
      }),
    );
    const events = await statuses(store, "t-orphan");
    await start(id);
    expect(await waitFor(events.final, { what: "lost report" })).toMatchObject({
      state: "lost",
      epoch: 4,
      jobId: "job-orphan",
      message: "agent restarted while the task ran (previous boot previous-boot)",
    });
    await waitFor(() => !isAlive(pid), { what: "orphan killed" });
    events.stop();
  });

  it("kills a previous life's supervisor still in its kill grace and the task's group, never a reused pid", async () => {
    const id = "agent-leftover";
    const agentDir = join(workDir, id);
    const groups: number[] = [];
    try {
      // A first life runs one task, which writes the supervisor script where this agent keeps it.
      const first = await start(id);
      const firstEvents = await statuses(store, "t-first");
      await assign(id, assignment("t-first", [0], "true"));
      expect(await waitFor(firstEvents.final, { what: "t-first done" })).toMatchObject({ state: "succeeded" });
      firstEvents.stop();
      await first.stop();
      agents.splice(0);
      const script = readdirSync(join(agentDir, "bin")).find((n) => /^capa-task-supervisor-.*\.cjs$/.test(n));
      expect(script).toBeDefined();

      // What that life's crash left: a supervisor started as the executor starts it, whose agent is gone (stdin
      // closed), in the 10-minute grace of a task that survives SIGTERM (it writes "term" down and carries on).
      const marker = join(workDir, "leftover.marker");
      const supervisor = spawn(process.execPath, [join(agentDir, "bin", script!)], {
        env: {},
        detached: true,
        stdio: ["pipe", "ignore", "ignore", "pipe"],
      });
      groups.push(supervisor.pid!);
      let reports = "";
      (supervisor.stdio[3] as Readable).on("data", (d: Buffer) => {
        reports += d.toString();
      });
      const stdin = supervisor.stdin as Writable;
      stdin.on("error", () => undefined);
      const taskScript =
        `trap '' TERM; sleep 300 & sleep 300 & trap 'echo term >> ${marker}' TERM; echo ready >> ${marker}; ` +
        "while :; do wait; done";
      stdin.write(
        `${JSON.stringify({ start: 1, command: ["sh", "-c", taskScript], env: { PATH: process.env.PATH }, cwd: workDir, killGraceMs: 600_000 })}\n`,
      );
      const taskPid = await waitFor(() => Number(/"pid":(\d+)/.exec(reports)?.[1] ?? 0) || undefined, {
        what: "the leftover task's pid report",
      });
      groups.push(taskPid);
      await waitFor(() => existsSync(marker) && lines(marker).includes("ready"), { what: "traps installed" });
      stdin.end();
      await waitFor(() => lines(marker).includes("term"), { what: "the leftover task's SIGTERM" });
      expect(groupMembers(taskPid)).toHaveLength(3);

      // And processes that now hold pids of another record: same pids, other start times.
      const reusedTask = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
      const reusedSupervisor = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
      groups.push(reusedTask.pid!, reusedSupervisor.pid!);
      const other = (pid: number) => String(Number(startTicks(pid)) + 1);

      const stateDir = join(agentDir, "state");
      const base = { epoch: 2, bootId: "crashed-boot", gpuIndices: [1], startedAtMs: Date.now() - 1000 };
      writeFileSync(
        join(stateDir, "t-leftover.json"),
        JSON.stringify({
          ...base,
          taskId: "t-leftover",
          jobId: "job-t-leftover",
          pid: taskPid,
          pidStartTicks: startTicks(taskPid),
          supervisorPid: supervisor.pid,
          supervisorStartTicks: startTicks(supervisor.pid!),
        }),
      );
      writeFileSync(
        join(stateDir, "t-reused.json"),
        JSON.stringify({
          ...base,
          taskId: "t-reused",
          jobId: "job-t-reused",
          pid: reusedTask.pid,
          pidStartTicks: other(reusedTask.pid!),
          supervisorPid: reusedSupervisor.pid,
          supervisorStartTicks: other(reusedSupervisor.pid!),
        }),
      );

      const leftoverEvents = await statuses(store, "t-leftover");
      const reusedEvents = await statuses(store, "t-reused");
      await start(id);
      for (const events of [leftoverEvents, reusedEvents]) {
        expect(await waitFor(events.final, { what: "lost report" })).toMatchObject({
          state: "lost",
          epoch: 2,
          message: "agent restarted while the task ran (previous boot crashed-boot)",
        });
        events.stop();
      }
      // The supervisor was SIGKILLed (its grace has minutes to go, so it did not exit on its own), and with it the
      // task's whole group, which ignores SIGTERM.
      expect(await exitOf(supervisor)).toEqual({ code: null, signal: "SIGKILL" });
      await waitFor(() => groupMembers(taskPid).length === 0, { what: "every process of the leftover task gone" });
      expect(lines(marker)).toEqual(["ready", "term"]);
      // The kills happen before the lost report: processes that merely reuse recorded pids were sent nothing.
      expect(neverKilled(reusedTask.pid!)).toBe(true);
      expect(neverKilled(reusedSupervisor.pid!)).toBe(true);
    } finally {
      for (const group of groups) {
        try {
          process.kill(-group, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });

  it("still receives assignments when its watch consumer is deleted under it", async () => {
    const id = "agent-rewatch";
    await start(id);
    const consumers = async () => {
      const names: string[] = [];
      for await (const c of store.jsm.consumers.list(`KV_${BUCKETS.allocs}`)) names.push(c.name);
      return names;
    };
    const watches = await waitFor(
      async () => {
        const names = await consumers();
        return names.length > 0 && names;
      },
      { what: "the agent's watch consumer" },
    );
    for (const name of watches) await store.jsm.consumers.delete(`KV_${BUCKETS.allocs}`, name);
    const events = await statuses(store, "t-rewatch");
    await assign(id, assignment("t-rewatch", [0], "true"));
    expect(await waitFor(events.final, { what: "t-rewatch done", timeoutMs: 30_000 })).toMatchObject({
      state: "succeeded",
    });
    events.stop();
  });

  it("keeps working across a nats-server restart: the assignment watch resumes", async () => {
    const id = "agent-reconnect";
    await start(id);
    const before = await statuses(store, "t-before");
    await assign(id, assignment("t-before", [0], "echo before"));
    expect(await waitFor(before.final, { what: "t-before done" })).toMatchObject({ state: "succeeded" });
    before.stop();

    await server.restart();
    // Our own connection reconnects too; writes succeed once JetStream is back.
    const after = await waitFor(() => statuses(store, "t-after"), { what: "stream reachable", timeoutMs: 30_000 });
    await waitFor(() => assign(id, assignment("t-after", [1], "echo after")).then(() => true), {
      what: "assignment written",
      timeoutMs: 30_000,
    });
    expect(await waitFor(after.final, { what: "t-after done", timeoutMs: 30_000 })).toMatchObject({
      state: "succeeded",
    });
    expect(after.all().map((s) => s.state)).toEqual(["starting", "running", "succeeded"]);
    after.stop();
  });
});
