/**
 * End to end: a real nats-server, the scheduler over real gRPC, and a real agent (@capa/agent) running real
 * child processes on simulated GPUs.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { isAlive, waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  getJob,
  H100_PRICE,
  type Harness,
  logs,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
  watch,
} from "./scheduler-harness.js";

const AGENT_ID = "e2e-agent-1";

describe("scheduler end to end with a real agent", () => {
  let h: Harness;
  let agent: AgentHandle;
  let workDir: string;

  beforeAll(async () => {
    h = await startHarness();
    workDir = mkdtempSync(join(tmpdir(), "capa-e2e-"));
    agent = await startAgent({
      ...(await h.agentNats(AGENT_ID, "eu-west")),
      agentId: AGENT_ID,
      region: "eu-west",
      prices: [H100_PRICE],
      simulateGpus: "4xH100-80GB",
      workDir,
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      advertTtlSeconds: 10,
      logger: silent,
    });
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return r.agents.some((a) => a.agentId === AGENT_ID && a.status === "ready");
      },
      { what: "the agent registered with the scheduler" },
    );
  });
  afterAll(async () => {
    await agent?.stop();
    await h?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("runs a 2-GPU job: PENDING → PLACED → RUNNING → SUCCEEDED, logs show its two GPUs", async () => {
    // Hold placement (drain) until the watch is open, so its first event is surely the PENDING job.
    await rpc((cb) => h.operator.drainAgent({ agentId: AGENT_ID, drain: true }, cb));
    const { job } = await submit(
      h,
      spec({ gpusPerReplica: 2, name: "hello" }, ["sh", "-c", "echo hello; echo $CUDA_VISIBLE_DEVICES"]),
    );
    const watcher = watch(h, job!.id);
    await waitFor(() => watcher.events.length > 0, { what: "the first watch event" });
    await rpc((cb) => h.operator.drainAgent({ agentId: AGENT_ID, drain: false }, cb));
    await watcher.done;
    expect(watcher.states()).toEqual(["PENDING", "PLACED", "RUNNING", "SUCCEEDED"]);
    const done = await getJob(h, job!.id);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const task = done.tasks[0]!;
    expect(task.agentId).toBe(AGENT_ID);
    expect(task.gpuIndices).toHaveLength(2);
    expect(task.gpuModel).toBe("H100-80GB");
    expect(task.priceMicrosPerGpuHour).toBe(H100_PRICE.onDemandPerHour);
    expect(task.epoch).toBeGreaterThan(0);
    const out = logs(h, job!.id, false);
    await out.done;
    expect(out.text(pb.LogStream.LOG_STREAM_STDOUT)).toBe(`hello\n${task.gpuIndices.join(",")}\n`);
  });

  it("fails a job whose command exits non-zero, with its exit code", async () => {
    const { job } = await submit(h, spec({}, ["sh", "-c", "echo oops >&2; exit 7"]));
    await watch(h, job!.id).done;
    const done = await getJob(h, job!.id);
    expect(stateName(done.state)).toBe("FAILED");
    expect(done.tasks[0]!.exitCode).toBe(7);
    expect(done.reason).toMatch(/exited with code 7/);
  });

  it("cancels a long sleep: CANCELLED and the processes are gone", async () => {
    const { job } = await submit(h, spec({}, ["sh", "-c", 'sleep 300 & echo "pids=$$,$!"; wait']));
    const follow = logs(h, job!.id, true);
    const pids = await waitFor(() => /pids=(\d+),(\d+)/.exec(follow.text())?.slice(1).map(Number), {
      what: "task pids in the followed logs",
    });
    expect(pids.every(isAlive)).toBe(true);
    const cancelled = await rpc<pb.CancelJobResponse>((cb) => h.jobs.cancelJob({ jobId: job!.id, reason: "test" }, cb));
    expect(cancelled.job!.cancelRequested).toBe(true);
    await watch(h, job!.id).done;
    expect(stateName((await getJob(h, job!.id)).state)).toBe("CANCELLED");
    await waitFor(() => !pids.some(isAlive), { what: "task processes gone" });
    await follow.done; // follow ends once the job is final and the tail is drained
  });

  it("runs two jobs that each need every GPU one after the other", async () => {
    const gate = join(workDir, "gate-two-jobs");
    const first = await submit(
      h,
      spec({ gpusPerReplica: 4 }, ["sh", "-c", `while [ ! -f ${gate} ]; do sleep 0.05; done`]),
    );
    const second = await submit(h, spec({ gpusPerReplica: 4 }, ["sh", "-c", "echo second"]));
    try {
      await waitFor(async () => stateName((await getJob(h, first.job!.id)).state) === "RUNNING", {
        what: "first job running",
      });
      // The second job has been planned and found no room while the first one holds every GPU.
      const waiting = await waitFor(
        async () => {
          const j = await getJob(h, second.job!.id);
          return /waiting for capacity/.test(j.reason) && j;
        },
        { what: "second job waiting for capacity" },
      );
      expect(stateName(waiting.state)).toBe("PENDING");
      expect(stateName((await getJob(h, first.job!.id)).state)).toBe("RUNNING");
    } finally {
      writeFileSync(gate, "");
    }
    await watch(h, second.job!.id).done;
    const [a, b] = [await getJob(h, first.job!.id), await getJob(h, second.job!.id)];
    expect([stateName(a.state), stateName(b.state)]).toEqual(["SUCCEEDED", "SUCCEEDED"]);
    expect(b.tasks[0]!.placedAtMs).toBeGreaterThanOrEqual(a.tasks[0]!.finishedAtMs);
    expect(b.tasks[0]!.gpuIndices.sort()).toEqual([0, 1, 2, 3]);
  });

  it("finishes a job across a scheduler restart and never submits it twice", async () => {
    const gate = join(workDir, "gate-restart");
    const request = { requestId: "restart-req-1", tenant: "restart-tenant" };
    const jobSpec = spec({ gpusPerReplica: 1 }, [
      "sh",
      "-c",
      `while [ ! -f ${gate} ]; do sleep 0.05; done; echo finished`,
    ]);
    const first = await submit(h, jobSpec, request);
    expect(first.deduplicated).toBe(false);
    try {
      await waitFor(async () => stateName((await getJob(h, first.job!.id)).state) === "RUNNING", {
        what: "job running before the restart",
      });
      await h.restartScheduler();
      const again = await submit(h, jobSpec, request);
      expect(again).toMatchObject({ deduplicated: true, job: { id: first.job!.id } });
    } finally {
      writeFileSync(gate, "");
    }
    // Following from the new scheduler: the stream ends by itself once the job is final and the tail is read.
    const followed = logs(h, first.job!.id, true);
    await watch(h, first.job!.id).done;
    await followed.done;
    expect(followed.text(pb.LogStream.LOG_STREAM_STDOUT)).toBe("finished\n");
    const done = await getJob(h, first.job!.id);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: request.tenant, states: [], limit: 0, pageToken: "" }, cb),
    );
    expect(listed.jobs.map((j) => j.id)).toEqual([first.job!.id]);
    expect(existsSync(gate)).toBe(true);
  });
});
