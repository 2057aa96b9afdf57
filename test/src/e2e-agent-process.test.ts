/**
 * End to end with agents as real child processes: the built `capa agent` (bin/capa.js → dist) started twice on a
 * real nats-server, the scheduler over real gRPC, and a real `sleep` task. One agent is SIGKILLed mid-task; the
 * scheduler re-places the task on the other under a new epoch, the killed agent's task does not outlive it (its
 * supervisor kills it), the killed agent's stale report cannot move it back, and the killed agent, restarted on the
 * same work dir, reports its previous life's task lost.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { decode, subjects } from "@capa/bus";
import type { TaskStatusReport } from "@capa/domain";
import { isAlive, procStat, waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited, startCapa } from "./cli-harness.js";
import { getJob, type Harness, logs, rpc, spec, startHarness, stateName, submit, watch } from "./scheduler-harness.js";

const REGION = "eu-west";
const CHEAP = "proc-agent-cheap";
const DEAR = "proc-agent-dear";

interface AgentProcess {
  id: string;
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function agentStatus(h: Harness, agentId: string): Promise<string | undefined> {
  const r = await rpc<pb.ListAgentsResponse>((cb) =>
    h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
  );
  return r.agents.find((a) => a.agentId === agentId)?.status;
}

/** Every `pid=N` line the task printed so far, across its epochs, in log order. */
async function printedPids(h: Harness, jobId: string): Promise<number[]> {
  const out = logs(h, jobId, false);
  await out.done;
  return [...out.text(pb.LogStream.LOG_STREAM_STDOUT).matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

describe("agents as child processes: SIGKILL, re-placement, restart recovery", () => {
  let h: Harness;
  let root: string;
  const agents: AgentProcess[] = [];
  /** Process groups of task processes seen in this test; whatever is left of them is killed in afterAll. */
  const taskGroups = new Set<number>();

  async function startAgentProcess(id: string, price: string): Promise<AgentProcess> {
    const workDir = join(root, id);
    mkdirSync(workDir, { recursive: true });
    const { seedFile } = await h.enrollAgent(id, REGION);
    const agent: AgentProcess = {
      id,
      ...startCapa([
        "agent",
        "--nats-url",
        h.nats.url,
        "--nats-nkey",
        seedFile,
        "--id",
        id,
        "--region",
        REGION,
        "--simulate-gpus",
        "2xH100-80GB",
        "--price",
        `H100-80GB=${price}`,
        "--work-dir",
        workDir,
        "--advert-interval",
        "500ms",
        "--heartbeat-interval",
        "200ms",
        "--advert-ttl",
        "3s",
        "--log-level",
        "warn",
      ]),
    };
    agents.push(agent);
    await waitFor(
      async () => {
        if (!running(agent.child)) {
          throw new Error(`capa agent ${id} exited ${agent.child.exitCode}: ${agent.output().stderr}`);
        }
        return (await agentStatus(h, id)) === "ready";
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `agent ${id} (child pid ${agent.child.pid}) ready` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nstderr:\n${agent.output().stderr}`);
    });
    return agent;
  }

  async function stopAgentProcess(agent: AgentProcess): Promise<void> {
    if (!running(agent.child)) return;
    agent.child.kill("SIGTERM");
    const stopped = await Promise.race([
      exited(agent.child).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 35_000)),
    ]);
    if (!stopped && running(agent.child)) {
      agent.child.kill("SIGKILL");
      await exited(agent.child);
    }
  }

  beforeAll(async () => {
    assertCliBuilt();
    root = mkdtempSync(join(tmpdir(), "capa-e2e-agent-proc-"));
    h = await startHarness({ agentTimeoutMs: 3_000 });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => stopAgentProcess(a)));
    for (const group of taskGroups) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await h?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it("re-places a SIGKILLed agent's task on the other agent; the orphan dies with the agent", async () => {
    const cheap = await startAgentProcess(CHEAP, "2.00");
    await startAgentProcess(DEAR, "3.00");

    // `exec` keeps the pid: the printed pid is the sleep itself, the leader of the task's process group.
    const { job } = await submit(
      h,
      spec({ gpusPerReplica: 2, name: "sleeper" }, ["sh", "-c", "echo pid=$$; exec sleep 600"]),
    );
    const jobId = job!.id;
    const watcher = watch(h, jobId);
    const stale: TaskStatusReport[] = [];
    let subscription: ReturnType<Harness["nc"]["subscribe"]> | undefined;
    try {
      const first = await waitFor(
        async () => {
          const t = (await getJob(h, jobId)).tasks[0];
          return t?.state === pb.TaskState.TASK_STATE_RUNNING && t;
        },
        { timeoutMs: 60_000, what: "the job running" },
      );
      expect(first).toMatchObject({ agentId: CHEAP, gpuModel: "H100-80GB", priceMicrosPerGpuHour: 2_000_000 });
      expect(first.gpuIndices.sort()).toEqual([0, 1]);
      const [orphan] = await waitFor(
        async () => {
          const pids = await printedPids(h, jobId);
          return pids.length === 1 && pids;
        },
        { timeoutMs: 30_000, what: "the first task pid in the logs" },
      );
      taskGroups.add(orphan!);
      expect(isAlive(orphan!)).toBe(true);
      expect(readFileSync(`/proc/${orphan}/comm`, "utf8").trim()).toBe("sleep");
      expect(Number(procStat(orphan!)[2])).toBe(orphan); // its own process group, apart from the agent's

      // Reports on the task's status subject, to see the dead agent's stale report once it is restarted.
      subscription = h.nc.subscribe(subjects.taskStatusAnyAgent(first.id), {
        callback: (err, msg) => {
          if (err) return;
          const report = decode.status(msg.data);
          if (report.agentId === CHEAP && report.epoch === first.epoch) stale.push(report);
        },
      });

      // Crash the cheap agent: no goodbye, no stop of its task.
      cheap.child.kill("SIGKILL");
      expect((await exited(cheap.child)).signal).toBe("SIGKILL");
      // The task's supervisor sees its pipe from the agent close and stops the task (it honours SIGTERM): the dead
      // agent's GPUs are free again before the task runs anywhere else.
      await waitFor(() => !isAlive(orphan!), {
        timeoutMs: 30_000,
        what: "the orphaned sleep killed by its supervisor",
      });

      await waitFor(async () => (await agentStatus(h, CHEAP)) === "lost", {
        timeoutMs: 60_000,
        what: "the killed agent marked lost",
      });
      const second = await waitFor(
        async () => {
          const t = (await getJob(h, jobId)).tasks[0];
          return t?.state === pb.TaskState.TASK_STATE_RUNNING && t.agentId === DEAR && t;
        },
        { timeoutMs: 60_000, what: "the task running again on the other agent" },
      );
      expect(second.id).toBe(first.id);
      expect(second.epoch).toBeGreaterThan(first.epoch);
      expect(second.priceMicrosPerGpuHour).toBe(3_000_000);
      expect(stateName((await getJob(h, jobId)).state)).toBe("RUNNING");
      const [, replacement] = await waitFor(
        async () => {
          const pids = await printedPids(h, jobId);
          return pids.length === 2 && pids;
        },
        { timeoutMs: 30_000, what: "the re-placed task's pid in the logs" },
      );
      taskGroups.add(replacement!);
      expect(replacement).not.toBe(orphan);
      expect(isAlive(replacement!)).toBe(true);
      expect(isAlive(orphan!)).toBe(false);

      // The same agent, same work dir, comes back: its recovery finds the task's record without a final state and
      // reports it lost under the old epoch — a stale report the scheduler must fence off.
      await startAgentProcess(CHEAP, "2.00");
      const lost = await waitFor(() => stale.find((r) => r.state === "lost"), {
        timeoutMs: 30_000,
        what: "the restarted agent's lost report for the old epoch",
      });
      expect(lost).toMatchObject({ taskId: first.id, epoch: first.epoch });
      expect(isAlive(replacement!)).toBe(true);

      // Cancel: the new epoch's report comes after the stale one on the task's subject, so by the time the job is
      // final the stale report has been seen and ignored (else there would be a second RESCHEDULING).
      await rpc((cb) => h.jobs.cancelJob({ jobId, reason: "test over" }, cb));
      await watcher.done;
      const done = await getJob(h, jobId);
      expect(stateName(done.state)).toBe("CANCELLED");
      expect(done.tasks[0]).toMatchObject({ agentId: DEAR, epoch: second.epoch });
      expect(watcher.states().slice(-5)).toEqual(["RUNNING", "RESCHEDULING", "PLACED", "RUNNING", "CANCELLED"]);
      expect(watcher.states().filter((s) => s === "RESCHEDULING")).toHaveLength(1);
      await waitFor(() => !isAlive(replacement!), { timeoutMs: 30_000, what: "the cancelled task's sleep gone" });
    } finally {
      subscription?.unsubscribe();
      watcher.cancel();
      await watcher.done.catch(() => undefined);
    }
  }, 240_000);
});
