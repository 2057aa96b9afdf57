/**
 * Self-fencing end to end (agents/src/fence.ts): the built `capa agent` runs as a child process in a region of a
 * real 2-region NATS supercluster (JetStream in the home region only, as in production), with a short
 * `--partition-grace`, and runs a long task given through its assignment key (as the scheduler's plan applier
 * writes it). Two real cuts, each while the task runs:
 *  - the home region's servers stop: the agent still reaches its own region's servers, but not the scheduler's
 *    state (a cut region, which the scheduler holds for the grace);
 *  - its own region's servers stop: it reaches nothing (the scheduler may lose it alone, at its advert TTL); the
 *    agent runs with `--fence-on-disconnect`, so the bus clock fences it.
 * Each time the test waits, with the cut still in place, for every process of the task's group to be gone, and
 * after the cut heals reads the task's final report from the reports stream: `lost`, with the fenced reason
 * naming the clock that ran out. Without fencing the task would run through the cut: nothing else stops it.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JOURNAL_FILE, readJournal } from "@capa/agent";
import { connectBus, decode, encode, ensureStore, STREAMS, type Store, subjects, TypedKv } from "@capa/bus";
import type { AgentAssignments, TaskAssignment, TaskStatusReport } from "@capa/domain";
import { type ClusterServer, groupMembers, type SuperclusterHandle, startSupercluster, waitFor } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAgentAndTasks, markerLines as lines, shellAssignment, startAgentUntilHeartbeat } from "./agent-harness.js";
import { assertCliBuilt } from "./cli-harness.js";

const HOME = "eu-west";
const REGION = "us-east";
const AGENT_ID = "agent-fenced";
/** Short enough for a test; the product's default is 2 min. */
const GRACE = "8s";
const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected", "lost", "preempted"]);

/** A task that runs until something stops it; its TERM trap writes down that it was asked to stop. */
const longTask = (taskId: string, gpuIndex: number, marker: string): TaskAssignment =>
  shellAssignment(
    taskId,
    gpuIndex,
    `trap 'echo term >> ${marker}; exit 0' TERM; sleep 600 & echo ready >> ${marker}; wait`,
    1,
  );

describe("an agent cut off from the scheduler stops its own tasks before they are re-placed", () => {
  let sc: SuperclusterHandle;
  /** The home region's servers (JetStream) and the agent's region's. */
  let home: ClusterServer[];
  let local: ClusterServer[];
  let nc: NatsConnection;
  let store: Store;
  let allocs: TypedKv<AgentAssignments>;
  let workDir: string;
  let agent: { child: ChildProcess; output: () => { stdout: string; stderr: string } } | undefined;
  /** Task process groups seen here; whatever is left of them is killed in afterAll. */
  const groups = new Set<number>();

  beforeAll(async () => {
    assertCliBuilt();
    // Three servers a region: a JetStream cluster needs routes (one server alone refuses to start it).
    sc = await startSupercluster({ regions: [HOME, REGION] });
    home = sc.servers.filter((s) => s.node.region === HOME);
    local = sc.servers.filter((s) => s.node.region === REGION);
    await sc.waitForJetStream();
    await sc.waitForMesh();
    // The test plays the scheduler: it reads and writes the home region's JetStream.
    nc = await connectBus({ servers: sc.homeUrls, name: "agent-fence-test" });
    store = await ensureStore(nc);
    allocs = new TypedKv(store.allocs, { encode: encode.assignments, decode: decode.assignments });
    workDir = mkdtempSync(join(tmpdir(), "capa-agent-fence-"));
  }, 60_000);

  afterAll(async () => {
    await killAgentAndTasks(agent?.child, groups);
    await nc?.close();
    await sc?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const stopAll = (servers: ClusterServer[]) => Promise.all(servers.map((s) => s.kill("SIGTERM")));
  /** All at once: a JetStream cluster's servers wait for each other. */
  const startAll = async (servers: ClusterServer[]) => {
    await Promise.all(servers.map((s) => s.start()));
    await sc.waitForJetStream(60_000);
    await sc.waitForMesh(60_000);
  };

  /** The task's pid (its group's leader) from the record the agent keeps for its own restarts. */
  function taskPid(taskId: string): number | undefined {
    return readJournal(join(workDir, "state", JOURNAL_FILE)).records.get(taskId)?.pid || undefined;
  }

  /** The task's first final report in the reports stream, once JetStream answers again. */
  async function finalReport(taskId: string): Promise<TaskStatusReport> {
    return waitFor(
      async () => {
        const consumer = await store.js.consumers.get(STREAMS.tasks, {
          filter_subjects: subjects.taskStatusAnyAgent(taskId),
        });
        try {
          for (;;) {
            const m = await consumer.next({ expires: 1_000 });
            if (!m) return undefined;
            const report = decode.status(m.data);
            if (FINAL.has(report.state)) return report;
          }
        } finally {
          await consumer.delete().catch(() => undefined);
        }
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `${taskId}'s final report` },
    );
  }

  /** Assigns a long task and waits until it runs, its TERM trap set, untouched. */
  async function runLongTask(taskId: string, gpuIndex: number): Promise<{ pid: number; marker: string }> {
    const marker = join(workDir, `${taskId}.marker`);
    const task = longTask(taskId, gpuIndex, marker);
    await allocs.mutate(AGENT_ID, (current) => ({
      agentId: AGENT_ID,
      tasks: [...(current?.tasks ?? []), task],
      updatedAtMs: Date.now(),
    }));
    const pid = await waitFor(() => taskPid(taskId), { timeoutMs: 30_000, what: `${taskId} running` });
    groups.add(pid);
    await waitFor(() => lines(marker).includes("ready"), { what: `${taskId}: trap installed` });
    await waitFor(() => groupMembers(pid).length === 2, { what: `${taskId}: sh and its sleep` });
    expect(lines(marker)).toEqual(["ready"]);
    return { pid, marker };
  }

  it("starts with the partition grace it was given and says when it would fence", async () => {
    agent = await startAgentUntilHeartbeat(nc, {
      natsUrl: sc.urls(REGION).join(","),
      agentId: AGENT_ID,
      region: REGION,
      workDir,
      args: ["--advert-ttl", "3s", "--partition-grace", GRACE, "--fence-on-disconnect", "--log-level", "info"],
    });
    const started = await waitFor(
      () =>
        agent
          ?.output()
          .stdout.split("\n")
          .find((l) => l.includes('"agent started"')),
      { what: "the agent's start line" },
    );
    expect(JSON.parse(started)).toMatchObject({
      fence: { partitionGraceS: 8, agentTimeoutS: 3, afterNatsSilenceS: expect.any(Number) },
    });
  }, 60_000);

  /**
   * Runs a long task, stops `cut` and waits, with the cut still in place (`held` still up), for every process of
   * the task's group to be gone; then heals the cut and returns the task's final report.
   */
  async function fencedDuringCut(
    taskId: string,
    gpuIndex: number,
    cut: ClusterServer[],
    held: ClusterServer[],
  ): Promise<TaskStatusReport> {
    const { pid, marker } = await runLongTask(taskId, gpuIndex);
    await stopAll(cut);
    try {
      // The agent stopped it on its own: nothing else in this test signals a task.
      await waitFor(() => groupMembers(pid).length === 0, {
        timeoutMs: 60_000,
        what: `${taskId}'s group stopped during the cut`,
      });
      expect(cut.some((s) => s.running())).toBe(false);
      expect(held.every((s) => s.running())).toBe(true);
      // With SIGTERM first (its trap ran), not a SIGKILL out of nowhere.
      expect(lines(marker)).toEqual(["ready", "term"]);
    } finally {
      await startAll(cut);
    }
    const report = await finalReport(taskId);
    expect(report).toMatchObject({ state: "lost", agentId: AGENT_ID, epoch: 1 });
    return report;
  }

  it("a cut region (JetStream unreachable, its own servers up): fenced on the partition grace's clock", async () => {
    const report = await fencedDuringCut("t-cut-region", 0, home, local);
    expect(report.message).toMatch(/^fenced: no contact with the scheduler's state for \d+ s \(partition grace 8 s\)/);
    // The agent decided within the grace (it counts from its last read of its assignments).
    const silentS = Number(/for (\d+) s/.exec(report.message)?.[1]);
    expect(silentS).toBeLessThanOrEqual(8);
  }, 120_000);

  it("the agent's own NATS down (it may be lost alone): fenced on the agent timeout's clock", async () => {
    const report = await fencedDuringCut("t-disconnected", 1, local, home);
    // Not the grace's clock: the bus clock runs out first (fence.ts), at about half the 3 s advert TTL.
    expect(report.message).toMatch(/^fenced: no round trip to NATS for \d+ s \(agent timeout 3 s\)/);
    // The agent is back in contact: it still runs what it is given.
    await runLongTask("t-after", 0);
  }, 120_000);
});
