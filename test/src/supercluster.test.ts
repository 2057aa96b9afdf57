/**
 * A real NATS supercluster (2 regions × 3 servers, gateways, JetStream in the home region): the scheduler
 * connects to the home cluster and places every capa bucket and stream there with 3 replicas by default; an
 * agent in the other region reaches it through the gateways; losing one home server loses no acknowledged write.
 * Every server embeds capa's generated authorization (@capa/nats-auth): the scheduler and the agent connect as
 * their own nkey users, whichever cluster they reach, and an anonymous client is refused in every region.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { inboxPrefixFor } from "@capa/bus";
import { openAuthDir } from "@capa/nats-auth";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { type SuperclusterHandle, startSupercluster, waitFor } from "@capa/testkit";
import { credentials, type ServiceError, status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminTokenOf, H100_PRICE, rpc, silent, spec, stateName, withToken } from "./scheduler-harness.js";

const CAPA_STREAMS = [
  "KV_capa_jobs",
  "KV_capa_agents",
  "KV_capa_allocs",
  "KV_capa_leader",
  "KV_capa_policy",
  "KV_capa_requests",
  "KV_capa_requests_1",
  "KV_capa_requests_2",
  "KV_capa_budgets",
  "CAPA_TASKS",
  "CAPA_LOGS",
  "CAPA_LEDGER",
  "CAPA_INTAKE_0",
  "CAPA_INTAKE_1",
];

describe("scheduler on a 2-region NATS supercluster", () => {
  let sc: SuperclusterHandle;
  let scheduler: SchedulerHandle;
  let agent: AgentHandle;
  let jobs: pb.JobServiceClient;
  let dir: string;
  let schedulerSeed: string;
  /** A client as the scheduler user (full access), for the checks below. */
  const asScheduler = (servers: string | string[]) =>
    connect({ servers, authenticator: nkeyAuthenticator(new TextEncoder().encode(schedulerSeed)) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "capa-sc-test-"));
    const auth = openAuthDir(join(dir, "nats-auth"));
    const agentSeed = auth.enroll({ agentId: "far-agent-1", region: "us-east" }).seed;
    schedulerSeed = auth.schedulerSeed();
    sc = await startSupercluster({
      regions: ["eu-west", "us-east"],
      dir: join(dir, "nats"),
      render: { auth: readFileSync(auth.authConfFile, "utf8") },
    });
    scheduler = await startScheduler({
      natsUrl: sc.homeUrls.join(","),
      natsNkeySeed: schedulerSeed,
      grpcAddress: "127.0.0.1:0",
      dataDir: join(dir, "scheduler"),
      leaseTtlMs: 3_000,
      logger: silent,
    });
    agent = await startAgent({
      nats: sc.urls("us-east"),
      natsAuth: { nkeySeed: agentSeed },
      agentId: "far-agent-1",
      region: "us-east",
      prices: [H100_PRICE],
      simulateGpus: "2xH100-80GB",
      workDir: join(dir, "agent"),
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      advertTtlSeconds: 10,
      logger: silent,
    });
    jobs = new pb.JobServiceClient(
      scheduler.grpcAddress,
      credentials.createInsecure(),
      withToken(adminTokenOf(scheduler)),
    );
  });
  afterAll(async () => {
    jobs?.close();
    await agent?.stop();
    await scheduler?.stop();
    await sc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("places every capa bucket and stream in the home cluster with 3 replicas (the default for 3 servers)", async () => {
    const nc = await asScheduler(sc.urls("us-east"));
    try {
      const jsm = await jetstreamManager(nc);
      for (const name of CAPA_STREAMS) {
        const info = await jsm.streams.info(name);
        expect(info.config.num_replicas, name).toBe(3);
        expect(info.cluster?.name, name).toBe("eu-west");
        const peers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
        expect(peers.sort(), name).toEqual(["eu-west-1", "eu-west-2", "eu-west-3"]);
      }
    } finally {
      await nc.close();
    }
  });

  it("refuses anonymous clients in every region; the agent's user cannot read the scheduler's buckets", async () => {
    for (const region of ["eu-west", "us-east"]) {
      await expect(connect({ servers: sc.urls(region), maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
    }
    const auth = openAuthDir(join(dir, "nats-auth"));
    const nc = await connect({
      servers: sc.urls("us-east"),
      authenticator: nkeyAuthenticator(
        new TextEncoder().encode(readFileSync(auth.agentSeedFile("far-agent-1"), "utf8").trim()),
      ),
      inboxPrefix: inboxPrefixFor("far-agent-1"),
    });
    try {
      const kv = await new Kvm(nc).open("capa_jobs");
      await expect(kv.get("anything")).rejects.toThrow(/Permissions Violation/i);
    } finally {
      await nc.close();
    }
  });

  it("runs a job on an agent of the other region, through the gateways", async () => {
    const { job } = await rpc<pb.SubmitJobResponse>((cb) =>
      jobs.submitJob({ requestId: "far-1", tenant: "acme", spec: spec({}, ["sh", "-c", "echo far"]) }, cb),
    );
    const done = await waitFor(
      async () => {
        const { job: j } = await rpc<pb.GetJobResponse>((cb) => jobs.getJob({ jobId: job!.id }, cb));
        return stateName(j!.state) === "SUCCEEDED" ? j : undefined;
      },
      { timeoutMs: 30_000, what: "the job to succeed on the us-east agent" },
    );
    expect(done!.tasks[0]?.agentId).toBe("far-agent-1");
    expect(done!.tasks[0]?.region).toBe("us-east");
  });

  it("keeps serving with one home server SIGKILLed, and nothing acknowledged is lost after it restarts", async () => {
    const victim = sc.server("eu-west-2");
    await victim.kill("SIGKILL");
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      // While the streams led by the killed server elect new leaders the scheduler answers UNAVAILABLE: retry
      // with the same request id (the submit is idempotent), as the HA clients do.
      const { job } = await waitFor(
        async () => {
          try {
            return await rpc<pb.SubmitJobResponse>((cb) =>
              jobs.submitJob({ requestId: `r3-${i}`, tenant: "acme", spec: spec({}, ["true"]) }, cb),
            );
          } catch (err) {
            if ((err as ServiceError).code === status.UNAVAILABLE) return undefined;
            throw err;
          }
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `submit r3-${i} accepted` },
      );
      ids.push(job!.id);
    }
    await victim.start();
    // Read from a client connected to the restarted server only: JetStream answers from the stream leader,
    // and every acknowledged job is there.
    const nc = await asScheduler(victim.url);
    try {
      // The restarted server answers JetStream calls once it has rejoined the meta group: retry until then.
      await waitFor(
        async () => {
          const info = await (await jetstreamManager(nc)).streams.info("KV_capa_jobs");
          return (info.cluster?.replicas ?? []).every((r) => r.current);
        },
        { timeoutMs: 30_000, intervalMs: 200, what: "the restarted server caught up" },
      );
      const kv = await waitFor(() => new Kvm(nc).open("capa_jobs"), { timeoutMs: 30_000, what: "capa_jobs" });
      // A submit the normal path could not finish was acknowledged from an intake stream and its job is written
      // by the leader's materialiser once the buckets have leaders again: wait for each, then it must be there.
      for (const id of ids)
        await waitFor(async () => ((await kv.get(id))?.value.length ?? 0) > 0, {
          timeoutMs: 60_000,
          intervalMs: 200,
          what: `acknowledged job ${id} in capa_jobs`,
        });
    } finally {
      await nc.close();
    }
  });

  it("refuses more replicas than the home cluster has, naming the flag", async () => {
    await expect(
      startScheduler({
        natsUrl: sc.homeUrls.join(","),
        natsNkeySeed: schedulerSeed,
        grpcAddress: "127.0.0.1:0",
        replicas: 5,
        logger: silent,
        dataDir: join(dir, "s2"),
      }),
    ).rejects.toThrow(/--js-replicas 5 needs at least 5 JetStream servers in the home cluster; it has [23]/);
  });
});
