/**
 * Gateway load reports under scheduler HA: two replicas on one NATS, a fake agent running the service's replica.
 * A gateway that reports to the follower reaches the leader's autoscaler (the follower forwards ReportLoad), and
 * the load the leader accepted is shared with every replica (capa.v1.service.<tenant>.<service>.load), so the
 * follower's GetService shows the same requests/s as the leader's.
 */
import * as pb from "@capa/api";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Clients, clientsFor, FakeAgent, type Harness, rpc, silent, startHarness } from "./scheduler-harness.js";

describe("service load reports under HA", () => {
  let h: Harness;
  let follower: SchedulerHandle;
  let viaFollower: Clients;
  let agent: FakeAgent;

  beforeAll(async () => {
    h = await startHarness({ leaseTtlMs: 2_000 });
    follower = await startScheduler({
      natsUrl: h.nats.url,
      natsNkeySeed: h.schedulerSeed,
      grpcAddress: "127.0.0.1:0",
      dataDir: h.dataDir,
      leaseTtlMs: 2_000,
      logger: silent,
    });
    viaFollower = clientsFor(follower.grpcAddress, h.adminToken);
    agent = new FakeAgent(h, "load-ha-1").start();
  }, 60_000);
  afterAll(async () => {
    agent?.silence();
    viaFollower?.close();
    await follower?.stop();
    await h?.stop();
  });

  const get = async (c: { services: pb.ServiceServiceClient }) =>
    (await rpc<pb.GetServiceResponse>((cb) => c.services.getService({ tenant: "acme", name: "ha-echo" }, cb))).service!;

  it("a report sent to the follower drives the leader's autoscaler, and both replicas show the load", async () => {
    expect(h.scheduler.isLeader()).toBe(true);
    await rpc((cb) =>
      h.services.applyService(
        {
          tenant: "acme",
          spec: pb.ServiceSpec.fromPartial({
            name: "ha-echo",
            template: { command: ["serve"], env: {}, workingDir: "", killGraceSeconds: 2 },
            regions: [{ region: "eu-west", minReplicas: 1, maxReplicas: 3 }],
            gpusPerReplica: 1,
            target: { requestsPerSecondPerReplica: 5, scaleUpWindowMs: 500, scaleDownWindowMs: 60_000 },
          }),
        },
        cb,
      ),
    );
    const [assignment] = await waitFor(
      async () => {
        const a = await agent.assignments();
        return a.length > 0 && a;
      },
      { timeoutMs: 30_000, what: "the replica assigned to the fake agent" },
    );
    await agent.report(assignment!, "running");
    const taskId = assignment!.taskId;
    const report = () =>
      rpc((cb) =>
        viaFollower.services.reportLoad(
          {
            tenant: "acme",
            name: "ha-echo",
            gatewayId: "gw-eu-1",
            region: "eu-west",
            windowMs: 1_000,
            requests: 30,
            replicas: [{ taskId, requests: 30, errors: 0, p95LatencyMs: 12 }],
          },
          cb,
        ),
      );
    const shows30 = (s: pb.Service) => s.replicas.find((r) => r.taskId === taskId)?.requestsPerSecond === 30;
    let reports = 0;
    const seen = await waitFor(
      async () => {
        await report();
        reports++;
        const [leader, other] = await Promise.all([get(h), get(viaFollower)]);
        const desired = leader.regions.find((r) => r.region === "eu-west")?.desired ?? 0;
        return shows30(leader) && shows30(other) && desired > 1 && { leader, other, desired };
      },
      { timeoutMs: 30_000, intervalMs: 300, what: "the follower's report at the leader and shared back" },
    );
    expect(seen.desired).toBe(3); // 30 req/s at 5 per replica, capped at max 3
    expect(seen.other.regions.find((r) => r.region === "eu-west")?.requestsPerSecond).toBe(30);
    console.log(
      `[load-ha] ${reports} reports via the follower: leader desired 1 -> ${seen.desired}; follower shows 30 req/s`,
    );
  }, 90_000);
});
