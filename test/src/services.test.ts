/**
 * Inference services end to end: real nats-server, the scheduler over real gRPC, `capa agent` child processes in
 * two regions, a tiny Node HTTP server as the model. A service with min 1 per region gets a ready endpoint in
 * each (port assigned by the agent, readiness probed by it); each endpoint answers HTTP; SIGKILLing the agent of
 * one replica drops it from the endpoint set within its readiness period, and a replacement becomes ready.
 * `capa gateway` (child process) per region answers from the nearest replica and follows the replacement.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited } from "./cli-harness.js";
import { type Harness, rpcError, startHarness } from "./scheduler-harness.js";
import {
  type AgentProcess,
  applyService,
  endpoints,
  type GatewayProcess,
  getService,
  httpGet,
  serviceSpec,
  split,
  startAgentProcess,
  startGatewayProcess,
  stopAgentProcess,
  stopProcess,
  TENANT,
  writeModel,
} from "./service-harness.js";

describe("inference services: endpoints, readiness, replacement", () => {
  let h: Harness;
  let root: string;
  let model: string;
  const agents: AgentProcess[] = [];
  const gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    assertCliBuilt();
    root = mkdtempSync(join(tmpdir(), "capa-services-"));
    model = writeModel(root);
    h = await startHarness({ agentTimeoutMs: 3_000 });
    agents.push(
      ...(await Promise.all([
        startAgentProcess(h, root, "svc-eu-1", "eu-west", "2.00"),
        startAgentProcess(h, root, "svc-us-1", "us-east", "2.10"),
        startAgentProcess(h, root, "svc-us-2", "us-east", "2.20"),
      ])),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => stopProcess(g.child)));
    await Promise.all(agents.map((a) => stopAgentProcess(a)));
    await h?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it("refuses a bad spec with the field path", async () => {
    const err = await rpcError((cb) =>
      h.services.applyService({ tenant: TENANT, spec: serviceSpec(model, { name: "Bad_Name", regions: [] }) }, cb),
    );
    expect(err.code).toBe(3);
    expect(err.details).toContain("spec.name");
    expect(err.details).toContain("spec.regions");
  });

  it("serves from both regions; a killed agent's replica leaves the endpoint set and is replaced", async () => {
    const applied = await applyService(h, serviceSpec(model));
    expect(applied.changed).toBe(true);
    expect(applied.service?.revision).toBe(1);

    const both = await waitFor(
      async () => {
        const eps = await endpoints(h, "echo");
        const eu = eps.filter((e) => e.region === "eu-west");
        const us = eps.filter((e) => e.region === "us-east");
        return eu.length === 1 && us.length === 1 && { eu: eu[0]!, us: us[0]! };
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "one ready endpoint per region" },
    );
    for (const ep of [both.eu, both.us]) {
      expect(ep.host).toBe("127.0.0.1");
      expect(ep.port).toBeGreaterThan(0);
      const res = await httpGet(ep.host, ep.port, "/");
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ task: ep.taskId, model: "v1" });
    }
    const svc = await getService(h, "echo");
    expect(svc.state).toBe(pb.ServiceState.SERVICE_STATE_READY);
    expect(svc.replicas.every((r) => r.ready && r.priceMicrosPerGpuHour > 0)).toBe(true);

    // `capa gateway` per region: each answers from its own region's replica (the nearest), and lists the set.
    const [euGw, usGw] = await Promise.all([
      startGatewayProcess(h, "echo", "eu-west"),
      startGatewayProcess(h, "echo", "us-east"),
    ]);
    gateways.push(euGw, usGw);
    for (const [gw, ep] of [
      [euGw, both.eu],
      [usGw, both.us],
    ] as const) {
      const [host, port] = split(gw.address);
      const answered = await waitFor(
        async () => {
          const res = await httpGet(host, port, "/");
          return res.status === 200 && (JSON.parse(res.body) as { task: string });
        },
        { timeoutMs: 10_000, intervalMs: 100, what: `gateway ${gw.address} answering` },
      );
      expect(answered.task).toBe(ep.taskId);
      const listed = JSON.parse((await httpGet(host, port, "/_capa/endpoints")).body) as { endpoints: unknown[] };
      expect(listed.endpoints).toHaveLength(2);
    }

    // SIGKILL the agent of the us-east replica: its readiness reports stop, so it leaves the endpoint set (probe
    // period 300 ms × 3, at least 1.5 s) before the scheduler even declares the agent lost (3 s).
    const victim = agents.find((a) => a.id === both.us.agentId)!;
    const killedAt = Date.now();
    victim.child.kill("SIGKILL");
    await exited(victim.child);
    await waitFor(async () => (await endpoints(h, "echo", "us-east")).length === 0, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: "the killed replica gone from the endpoint set",
    });
    const goneMs = Date.now() - killedAt;
    const replacement = await waitFor(
      async () => {
        const eps = await endpoints(h, "echo", "us-east");
        return eps.length === 1 && eps[0]!.agentId !== victim.id && eps[0]!;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "a replacement ready on the other us-east agent" },
    );
    const readyMs = Date.now() - killedAt;
    expect((await httpGet(replacement.host, replacement.port, "/")).status).toBe(200);
    // The us-east gateway follows: it answers from the replacement.
    const [usHost, usPort] = split(usGw.address);
    await waitFor(
      async () => {
        const res = await httpGet(usHost, usPort, "/");
        return res.status === 200 && (JSON.parse(res.body) as { task: string }).task === replacement.taskId;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: "the us-east gateway answering from the replacement" },
    );
    // The eu-west replica was never touched.
    expect((await endpoints(h, "echo", "eu-west")).map((e) => e.taskId)).toEqual([both.eu.taskId]);
    console.log(
      `[services] killed agent's replica out of the endpoint set after ${goneMs} ms; replacement ready after ${readyMs} ms`,
    );
  }, 180_000);
});
