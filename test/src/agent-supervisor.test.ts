/**
 * A task never outlives its agent: the built `capa agent` runs as a child process on a real nats-server, gets two
 * tasks through its assignment key (as the scheduler's plan applier writes it), and is SIGKILLed. Each task's
 * supervisor sees its lifeline pipe close and takes the task's whole process group down: SIGTERM at once, SIGKILL
 * after the task's kill grace for a tree that ignores SIGTERM.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, decode, encode, ensureStore, subjects, TypedKv } from "@capa/bus";
import type { AgentAssignments, TaskAssignment } from "@capa/domain";
import { type NatsServerHandle, startNatsServer, waitFor } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited, startCapa } from "./cli-harness.js";

const AGENT_ID = "agent-supervised";
const REGION = "eu-west";

/** /proc/<pid>/stat fields after the command name: [state, ppid, pgrp, ...]. */
function procStat(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Alive and not a zombie (a supervisor reparented to a PID 1 that does not reap stays one). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return procStat(pid)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes of a process group. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [state, , pgrp] = procStat(name);
      if (Number(pgrp) === pgid && state !== "Z") members.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return members;
}

function assignment(taskId: string, gpuIndex: number, script: string, killGraceSeconds: number): TaskAssignment {
  return {
    taskId,
    jobId: `job-${taskId}`,
    replica: 0,
    gpuIndices: [gpuIndex],
    template: { command: ["sh", "-c", script], env: {}, workingDir: "", killGraceSeconds },
    epoch: 1,
    pricePerGpuHour: 2_000_000,
    tenant: "acme",
    assignedAtMs: Date.now(),
    stop: false,
    stopReason: "",
  };
}

interface RecordPids {
  pid: number;
  supervisorPid: number;
}

describe("agent SIGKILLed: its tasks' supervisors kill the tasks", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let workDir: string;
  let agent: { child: ChildProcess; output: () => { stdout: string; stderr: string } } | undefined;
  /** Task process groups seen here; whatever is left of them is killed in afterAll. */
  const groups = new Set<number>();

  beforeAll(async () => {
    assertCliBuilt();
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "agent-supervisor-test" });
    await ensureStore(nc);
    workDir = mkdtempSync(join(tmpdir(), "capa-agent-supervisor-"));
  });

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill("SIGKILL");
      await exited(agent.child);
    }
    for (const group of groups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await nc?.close();
    await server?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** The task's pids from the record the agent keeps for its own restarts. */
  function recordPids(taskId: string): RecordPids | undefined {
    const path = join(workDir, "state", `${taskId}.json`);
    if (!existsSync(path)) return undefined;
    const record = JSON.parse(readFileSync(path, "utf8")) as Partial<RecordPids>;
    return record.pid && record.supervisorPid ? (record as RecordPids) : undefined;
  }

  it("kills every process of each task's group, within the task's kill grace", async () => {
    const heartbeat = (async () => {
      for await (const m of nc.subscribe(subjects.heartbeat(REGION, AGENT_ID), { max: 1 })) return m.data;
    })();
    agent = startCapa([
      "agent",
      "--nats-url",
      server.url,
      "--id",
      AGENT_ID,
      "--region",
      REGION,
      "--simulate-gpus",
      "2xH100-80GB",
      "--price",
      "H100-80GB=2.00",
      "--work-dir",
      workDir,
      "--heartbeat-interval",
      "200ms",
      "--log-level",
      "warn",
    ]);
    const child = agent.child;
    await Promise.race([
      heartbeat,
      exited(child).then((e) => {
        throw new Error(`capa agent exited ${e.code ?? e.signal}: ${agent?.output().stderr}`);
      }),
    ]);

    const store = await ensureStore(nc);
    const allocs = new TypedKv<AgentAssignments>(store.allocs, {
      encode: encode.assignments,
      decode: decode.assignments,
    });
    const plain = assignment("t-plain", 0, "sleep 600 & sleep 600; wait", 2);
    const stubborn = assignment("t-stubborn", 1, "trap '' TERM; sleep 600 & sleep 600; wait", 1);
    // As the scheduler's plan applier writes it (CAS).
    await allocs.mutate(AGENT_ID, () => ({ agentId: AGENT_ID, tasks: [plain, stubborn], updatedAtMs: Date.now() }));

    const tasks = [plain, stubborn].map((a) => ({ a, graceMs: a.template.killGraceSeconds * 1000 }));
    const pids = new Map<string, RecordPids>();
    for (const { a } of tasks) {
      const p = await waitFor(() => recordPids(a.taskId), { timeoutMs: 30_000, what: `${a.taskId} running` });
      groups.add(p.pid);
      pids.set(a.taskId, p);
      // sh and its two sleeps, in the task's own group; the group leader is the supervisor's child.
      await waitFor(() => groupMembers(p.pid).length === 3, { what: `${a.taskId}: sh and both sleeps` });
      expect(procStat(p.pid)[2]).toBe(String(p.pid));
      expect(procStat(p.pid)[1]).toBe(String(p.supervisorPid));
      expect(procStat(p.supervisorPid)[2]).toBe(String(p.supervisorPid));
      expect(procStat(p.supervisorPid)[1]).toBe(String(child.pid));
    }

    // Crash the agent: no goodbye, no stop of its tasks.
    child.kill("SIGKILL");
    expect((await exited(child)).signal).toBe("SIGKILL");

    for (const { a, graceMs } of tasks) {
      const p = pids.get(a.taskId)!;
      // The grace plus slack for a loaded machine: the kill is the supervisor's, started when the agent died.
      await waitFor(() => groupMembers(p.pid).length === 0, {
        timeoutMs: graceMs + 5_000,
        what: `every process of ${a.taskId}'s group gone`,
      });
      await waitFor(() => !isAlive(p.supervisorPid), { timeoutMs: 5_000, what: `${a.taskId}'s supervisor gone` });
    }
  }, 90_000);
});
