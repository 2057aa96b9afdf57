/**
 * A task never outlives its agent: the built `capa agent` runs as a child process on a real nats-server, gets two
 * tasks through its assignment key (as the scheduler's plan applier writes it), and is SIGKILLed. The agent's task
 * supervisor (one for both) sees its lifeline pipe close and takes each task's whole process group down: SIGTERM at
 * once, SIGKILL after that task's kill grace for a tree that ignores SIGTERM. The tasks write down what they receive
 * (a TERM trap appending to a marker file), so the test sees the order itself rather than inferring it from how long
 * things took.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JOURNAL_FILE, readJournal } from "@capa/agent";
import { connectBus, decode, encode, ensureStore, TypedKv } from "@capa/bus";
import type { AgentAssignments } from "@capa/domain";
import { groupMembers, isAlive, type NatsServerHandle, procStat, startNatsServer, waitFor } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  shellAssignment as assignment,
  killAgentAndTasks,
  markerLines as lines,
  startAgentUntilHeartbeat,
} from "./agent-harness.js";
import { assertCliBuilt, exited } from "./cli-harness.js";

const AGENT_ID = "agent-supervised";
const REGION = "eu-west";

interface RecordPids {
  pid: number;
  supervisorPid: number;
}

describe("agent SIGKILLed: its task supervisor kills every task", () => {
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
    await killAgentAndTasks(agent?.child, groups);
    await nc?.close();
    await server?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** The task's pids from the record the agent keeps for its own restarts. */
  function recordPids(taskId: string): RecordPids | undefined {
    const record = readJournal(join(workDir, "state", JOURNAL_FILE)).records.get(taskId);
    return record?.pid && record.supervisorPid ? (record as RecordPids) : undefined;
  }

  it("on the agent's death sends SIGTERM to each task's group, and SIGKILL after the grace to a tree that ignores it", async () => {
    agent = await startAgentUntilHeartbeat(nc, { natsUrl: server.url, agentId: AGENT_ID, region: REGION, workDir });
    const child = agent.child;

    const store = await ensureStore(nc);
    const allocs = new TypedKv<AgentAssignments>(store.allocs, {
      encode: encode.assignments,
      decode: decode.assignments,
    });
    const plainMarker = join(workDir, "plain.marker");
    const stubbornMarker = join(workDir, "stubborn.marker");
    // Honours SIGTERM: the trap records it and exits (its sleeps die of the same group-wide SIGTERM). Only a SIGTERM
    // writes the marker; a SIGKILL would end it without a word.
    const plain = assignment(
      "t-plain",
      0,
      `trap 'echo term >> ${plainMarker}; exit 0' TERM; sleep 600 & sleep 600 & echo ready >> ${plainMarker}; wait`,
      2,
    );
    // Ignores SIGTERM: the sleep is started with TERM ignored (inherited), sh traps it, writes it down and goes on;
    // after each interrupted wait it writes "alive", so the marker shows it outlived the SIGTERM. Nothing but a
    // SIGKILL ends this group (the sleep has 600 s to go).
    const stubborn = assignment(
      "t-stubborn",
      1,
      `trap '' TERM; sleep 600 & trap 'echo term >> ${stubbornMarker}' TERM; echo ready >> ${stubbornMarker}; ` +
        `while :; do wait; echo alive >> ${stubbornMarker}; done`,
      1,
    );
    // As the scheduler's plan applier writes it (CAS).
    await allocs.mutate(AGENT_ID, () => ({ agentId: AGENT_ID, tasks: [plain, stubborn], updatedAtMs: Date.now() }));

    const tasks = [
      { a: plain, marker: plainMarker, members: 3 },
      { a: stubborn, marker: stubbornMarker, members: 2 },
    ];
    const pids = new Map<string, RecordPids>();
    for (const { a, marker, members } of tasks) {
      const p = await waitFor(() => recordPids(a.taskId), { timeoutMs: 30_000, what: `${a.taskId} running` });
      groups.add(p.pid);
      pids.set(a.taskId, p);
      // The traps are set once "ready" is written; every process is in the task's own group, whose leader is the
      // supervisor's child.
      await waitFor(() => lines(marker).includes("ready"), { what: `${a.taskId}: traps installed` });
      await waitFor(() => groupMembers(p.pid).length === members, { what: `${a.taskId}: sh and its sleeps` });
      expect(procStat(p.pid)[2]).toBe(String(p.pid));
      expect(procStat(p.pid)[1]).toBe(String(p.supervisorPid));
      expect(procStat(p.supervisorPid)[2]).toBe(String(p.supervisorPid));
      expect(procStat(p.supervisorPid)[1]).toBe(String(child.pid));
      // Nothing has signalled the task yet.
      expect(lines(marker)).toEqual(["ready"]);
    }

    // One supervisor guards both: the agent's, started with its first task.
    expect(pids.get(plain.taskId)!.supervisorPid).toBe(pids.get(stubborn.taskId)!.supervisorPid);

    // Crash the agent: no goodbye, no stop of its tasks.
    child.kill("SIGKILL");
    expect((await exited(child)).signal).toBe("SIGKILL");

    // The TERM-honouring task got SIGTERM (its trap ran) and ended with it.
    const plainPids = pids.get(plain.taskId)!;
    await waitFor(() => lines(plainMarker).includes("term"), { what: "t-plain's TERM trap ran" });
    await waitFor(() => groupMembers(plainPids.pid).length === 0, { what: "every process of t-plain's group gone" });
    expect(lines(plainMarker)).toEqual(["ready", "term"]);

    // The TERM-ignoring task got SIGTERM too, and carried on after it ("alive" is written after the trap ran) ...
    const stubbornPids = pids.get(stubborn.taskId)!;
    await waitFor(() => lines(stubbornMarker).includes("alive"), { what: "t-stubborn alive after its SIGTERM" });
    expect(lines(stubbornMarker).slice(0, 3)).toEqual(["ready", "term", "alive"]);
    // ... until the SIGKILL after the grace: the only signal that ends this group.
    await waitFor(() => groupMembers(stubbornPids.pid).length === 0, {
      timeoutMs: 30_000,
      what: "every process of t-stubborn's group gone",
    });
    expect(lines(stubbornMarker).filter((l) => l === "term")).toEqual(["term"]);

    for (const p of [plainPids, stubbornPids]) {
      await waitFor(() => !isAlive(p.supervisorPid), { what: `supervisor ${p.supervisorPid} gone` });
    }
  }, 90_000);
});
