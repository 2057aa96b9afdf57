/**
 * Faults with test-only FakeAgents (which run nothing: the test drives every report): agent loss and
 * rescheduling with fencing epochs, leader failover between two schedulers, restart before placement, and
 * recovery adopting an assignment whose job commit never happened.
 */
import * as pb from "@capa/api";
import { decode, encode, TypedKv } from "@capa/bus";
import type { AgentAssignments } from "@capa/domain";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { waitFor } from "@capa/testkit";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FakeAgent,
  getJob,
  type Harness,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
  watch,
  withToken,
} from "./scheduler-harness.js";

async function agentStatus(h: Harness, agentId: string): Promise<string | undefined> {
  const r = await rpc<pb.ListAgentsResponse>((cb) =>
    h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
  );
  return r.agents.find((a) => a.agentId === agentId)?.status;
}

describe("agent loss", () => {
  let h: Harness;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    h = await startHarness({ agentTimeoutMs: 1_000, livenessIntervalMs: 100 });
  });
  afterAll(async () => {
    for (const a of agents) a.silence();
    await h?.stop();
  });

  it("re-places the tasks of a silent agent elsewhere and ignores the old epoch's reports", async () => {
    const a = new FakeAgent(h, "lossy-a").start();
    agents.push(a);
    await waitFor(async () => (await agentStatus(h, "lossy-a")) === "ready", { what: "agent a ready" });
    await rpc((cb) => h.operator.drainAgent({ agentId: "lossy-a", drain: true }, cb)); // hold until watched
    const { job } = await submit(h, spec({ gpusPerReplica: 2 }, ["sleep", "1000"]));
    const watcher = watch(h, job!.id);
    await waitFor(() => watcher.events.length > 0, { what: "the first watch event" });
    await rpc((cb) => h.operator.drainAgent({ agentId: "lossy-a", drain: false }, cb));
    const [first] = await waitFor(async () => (await a.assignments()).length === 1 && a.assignments(), {
      what: "assignment on a",
    });
    await a.report(first!, "running");
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "RUNNING", { what: "running on a" });

    const b = new FakeAgent(h, "lossy-b").start();
    agents.push(b);
    await waitFor(async () => (await agentStatus(h, "lossy-b")) === "ready", { what: "agent b ready" });
    a.silence();
    await waitFor(async () => (await agentStatus(h, "lossy-a")) === "lost", { what: "agent a lost" });
    const [second] = await waitFor(async () => (await b.assignments()).length === 1 && b.assignments(), {
      what: "re-placed on b",
    });
    expect(second!.taskId).toBe(first!.taskId);
    expect(second!.epoch).toBeGreaterThan(first!.epoch);
    expect(await a.assignments()).toEqual([]);

    // The lost agent comes back from the dead and reports the old allocation: fenced off.
    await a.report(first!, "succeeded");
    await b.report(second!, "running");
    await waitFor(async () => (await getJob(h, job!.id)).tasks[0]!.state === pb.TaskState.TASK_STATE_RUNNING, {
      what: "running on b",
    });
    const running = await getJob(h, job!.id);
    expect(running.tasks[0]).toMatchObject({ agentId: "lossy-b", epoch: second!.epoch });
    expect(stateName(running.state)).toBe("RUNNING");

    await b.report(second!, "succeeded", { exitCode: 0 });
    await watcher.done;
    expect(watcher.states()).toEqual([
      "PENDING",
      "PLACED",
      "RUNNING",
      "RESCHEDULING",
      "PLACED",
      "RUNNING",
      "SUCCEEDED",
    ]);
    await waitFor(async () => (await b.assignments()).length === 0, { what: "assignment removed after success" });
  });

  it("ends a lost agent's task at its last heartbeat, so the detection window is never billed", async () => {
    // Its own region, so the job cannot go to the other test's agent still alive in eu-west.
    const a = new FakeAgent(h, "cut-a", "us-east").start();
    agents.push(a);
    await waitFor(async () => (await agentStatus(h, "cut-a")) === "ready", { what: "agent cut-a ready" });
    await rpc((cb) => h.operator.drainAgent({ agentId: "cut-a", drain: true }, cb)); // hold until watched
    const { job } = await submit(h, spec({ gpusPerReplica: 1, regions: ["us-east"] }, ["sleep", "1000"]), {
      tenant: "cut-co",
    });
    const watcher = watch(h, job!.id);
    await waitFor(() => watcher.events.length > 0, { what: "the first watch event" });
    await rpc((cb) => h.operator.drainAgent({ agentId: "cut-a", drain: false }, cb));
    const [first] = await waitFor(async () => (await a.assignments()).length === 1 && a.assignments(), {
      what: "assignment on cut-a",
    });
    await a.report(first!, "running");
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "RUNNING", { what: "running" });
    a.silence();
    const lost = await waitFor(
      () => watcher.events.find((e) => e.job?.tasks[0]?.state === pb.TaskState.TASK_STATE_LOST),
      { what: "the task lost" },
    );
    const task = lost.job!.tasks[0]!;
    // The scheduler declared the loss only after `agentTimeoutMs` (1 s) of silence; the task's end is the last
    // heartbeat, at least that long before the loss was written (it was the detection time before).
    expect(task.finishedAtMs).toBeGreaterThanOrEqual(task.startedAtMs);
    expect(task.finishedAtMs).toBeLessThanOrEqual(lost.job!.updatedAtMs - 1_000);
    watcher.done.catch(() => undefined); // cancelling the stream rejects it
    watcher.cancel();
    await rpc((cb) => h.jobs.cancelJob({ jobId: job!.id, reason: "done" }, cb));
  });
});

describe("leader lease and restarts", () => {
  let h: Harness;
  let follower: SchedulerHandle | undefined;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    h = await startHarness({ leaseTtlMs: 1_000 });
  });
  afterAll(async () => {
    for (const a of agents) a.silence();
    await follower?.stop();
    await h?.stop();
  });

  it("keeps one leader; a second replica serves reads and takes over when the first stops", async () => {
    expect(h.scheduler.isLeader()).toBe(true);
    follower = await startScheduler({
      natsUrl: h.nats.url,
      natsNkeySeed: h.schedulerSeed,
      grpcAddress: "127.0.0.1:0",
      logger: silent,
      leaseTtlMs: 1_000,
      dataDir: h.dataDir,
    });
    expect(follower.isLeader()).toBe(false);
    const followerJobs = new pb.JobServiceClient(
      follower.grpcAddress,
      credentials.createInsecure(),
      withToken(h.adminToken),
    );
    try {
      // Submitted through the follower, planned by the leader.
      const agent = new FakeAgent(h, "lease-a").start();
      agents.push(agent);
      const submitted = await rpc<pb.SubmitJobResponse>((cb) =>
        followerJobs.submitJob({ requestId: "via-follower", tenant: "acme", spec: spec({}, ["true"]) }, cb),
      );
      await waitFor(async () => (await agent.assignments()).length === 1, { what: "placed by the leader" });
      await waitFor(
        async () => {
          const r = await rpc<pb.GetJobResponse>((cb) => followerJobs.getJob({ jobId: submitted.job!.id }, cb));
          return stateName(r.job!.state) === "PLACED";
        },
        { what: "the follower sees the placement" },
      );
      await h.scheduler.stop();
      await waitFor(() => follower!.isLeader(), { what: "the follower takes over" });
      const [assignment] = await agent.assignments();
      await agent.report(assignment!, "succeeded");
      await waitFor(
        async () => {
          const r = await rpc<pb.GetJobResponse>((cb) => followerJobs.getJob({ jobId: submitted.job!.id }, cb));
          return stateName(r.job!.state) === "SUCCEEDED";
        },
        { what: "the new leader folds the status" },
      );
    } finally {
      followerJobs.close();
    }
  });
});

describe("restart before placement and recovery", () => {
  let h: Harness;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    for (const a of agents) a.silence();
    await h?.stop();
  });

  it("places a job submitted before a restart once capacity appears", async () => {
    const { job } = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { requestId: "before-restart" });
    await h.restartScheduler();
    expect(stateName((await getJob(h, job!.id)).state)).toBe("PENDING");
    const agent = new FakeAgent(h, "late-a").start();
    agents.push(agent);
    const [a] = await waitFor(async () => (await agent.assignments()).length === 1 && agent.assignments(), {
      what: "placed after the restart",
    });
    expect(a!.jobId).toBe(job!.id);
    const again = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { requestId: "before-restart" });
    expect(again).toMatchObject({ deduplicated: true, job: { id: job!.id } });
  });

  it("adopts an assignment whose job commit was lost in a crash, instead of placing the task twice", async () => {
    const inApSouth = spec({ gpusPerReplica: 1, regions: ["ap-south"] }, ["true"]);
    const { job } = await submit(h, inApSouth); // waits: no agent in ap-south yet
    // No agent could ever hold it (yet): it waits, saying so.
    await waitFor(async () => /^UNSCHEDULABLE: /.test((await getJob(h, job!.id)).reason), { what: "waiting" });
    await h.scheduler.stop();
    // What a crash between the assignment commit and the job commit leaves behind, on an agent the scheduler
    // has not seen an advert from yet.
    const allocs = new TypedKv<AgentAssignments>(h.store.allocs, {
      encode: encode.assignments,
      decode: decode.assignments,
    });
    const epoch = 10_000_000;
    await allocs.create("adopt-a", {
      agentId: "adopt-a",
      updatedAtMs: Date.now(),
      tasks: [
        {
          taskId: `${job!.id}-0`,
          jobId: job!.id,
          replica: 0,
          gpuIndices: [0],
          template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 2 },
          epoch,
          pricePerGpuHour: 1,
          tenant: "acme",
          assignedAtMs: Date.now(),
          stop: false,
          stopReason: "",
        },
      ],
    });
    await h.restartScheduler();
    const agent = new FakeAgent(h, "adopt-a", "ap-south", 1).start();
    agents.push(agent);
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "PLACED", { what: "adopted" });
    const adopted = await getJob(h, job!.id);
    expect(adopted.tasks[0]).toMatchObject({ agentId: "adopt-a", epoch, gpuIndices: [0] });
    // The adopted task holds the agent's only GPU: nothing else fits there.
    await waitFor(async () => (await agentStatus(h, "adopt-a")) === "ready", { what: "agent known" });
    const sim = await rpc<pb.SimulateResponse>((cb) =>
      h.operator.simulate({ spec: inApSouth, profile: "", seed: 1 }, cb),
    );
    expect(sim.explanation?.outcome).toBe("pending");
    const [a] = await agent.assignments();
    expect(await agent.assignments()).toHaveLength(1);
    await agent.report(a!, "succeeded");
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "SUCCEEDED", {
      what: "adopted job done",
    });
  });
});

describe("NATS restart", () => {
  let h: Harness;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    for (const a of agents) a.silence();
    await h?.stop();
  });

  it("keeps scheduling after the NATS server restarts: state is durable, the consumer resumes", async () => {
    const agent = new FakeAgent(h, "nats-a").start();
    agents.push(agent);
    const { job } = await submit(h, spec({}, ["true"]), { requestId: "across-nats-restart" });
    const [a] = await waitFor(async () => (await agent.assignments()).length === 1 && agent.assignments(), {
      what: "placed",
    });
    await h.nats.restart();
    await waitFor(async () => await agent.report(a!, "succeeded").then(() => true), { what: "report after restart" });
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "SUCCEEDED", {
      what: "status folded after the restart",
      timeoutMs: 30_000,
    });
    const second = await submit(h, spec({}, ["true"]));
    await waitFor(async () => (await agent.assignments()).some((t) => t.jobId === second.job!.id), {
      what: "new work placed after the restart",
      timeoutMs: 30_000,
    });
  });
});

describe("garbage in the store", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  it("starts anyway, skipping entries it cannot decode, and keeps serving", async () => {
    const { job } = await submit(h, spec({ gpusPerReplica: 64 }, ["true"]));
    const junk = new TextEncoder().encode("\xff\xff not protobuf nor json {");
    await h.store.jobs.put("jgarbage0000000000", junk);
    await h.store.allocs.put("junk-agent", junk);
    await h.store.agents.put("junk-agent", junk);
    await h.store.policy.put("active", junk);
    await h.restartScheduler();
    expect((await getJob(h, job!.id)).id).toBe(job!.id);
    const policy = await rpc<pb.GetPolicyResponse>((cb) => h.operator.getPolicy({}, cb));
    expect(policy.policy?.profile).toBe("cheapest");
    expect(await agentStatus(h, "junk-agent")).toBeUndefined();
  });
});
