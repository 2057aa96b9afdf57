/**
 * The scheduler's gRPC surface on a real nats-server and a real channel: input validation (nothing reaches KV),
 * health, reflection, idempotent submit, listing, NOT_FOUND, policy, simulate, explain, drain and metrics.
 * A test-only FakeAgent supplies capacity where a placement is needed.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import * as pb from "@capa/api";
import { jsonCodec, TypedKv } from "@capa/bus";
import { waitFor } from "@capa/testkit";
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FakeAgent,
  getJob,
  type Harness,
  rpc,
  rpcError,
  spec,
  startHarness,
  stateName,
  submit,
} from "./scheduler-harness.js";

interface ReflectionClient {
  ServerReflectionInfo(): ClientDuplexStream<
    { listServices: string },
    { listServicesResponse: { service: { name: string }[] } }
  >;
  close(): void;
}

async function keyCount(h: Harness, bucket: "jobs" | "requests" | "allocs"): Promise<number> {
  let n = 0;
  for await (const _ of await h.store[bucket].keys()) n++;
  return n;
}

describe("scheduler API: validation", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  const good = () => spec({}, ["echo", "hi"]);
  const cases: [string, pb.SubmitJobRequest, string][] = [
    [
      "negative GPUs",
      { requestId: "", tenant: "acme", spec: { ...good(), gpusPerReplica: -1 } },
      "spec.gpus_per_replica",
    ],
    [
      "too many GPUs",
      { requestId: "", tenant: "acme", spec: { ...good(), gpusPerReplica: 65 } },
      "spec.gpus_per_replica",
    ],
    ["negative replicas", { requestId: "", tenant: "acme", spec: { ...good(), replicas: -1 } }, "spec.replicas"],
    ["empty command", { requestId: "", tenant: "acme", spec: spec({}, []) }, "spec.template.command"],
    ["empty program", { requestId: "", tenant: "acme", spec: spec({}, [""]) }, "spec.template.command"],
    ["unknown kind", { requestId: "", tenant: "acme", spec: { ...good(), kind: 42 as pb.JobKind } }, "spec.kind"],
    ["oversize name", { requestId: "", tenant: "acme", spec: { ...good(), name: "n".repeat(129) } }, "spec.name"],
    ["oversize request id", { requestId: "r".repeat(129), tenant: "acme", spec: good() }, "request_id"],
    ["oversize tenant", { requestId: "", tenant: "t".repeat(65), spec: good() }, "tenant"],
    ["bad tenant", { requestId: "", tenant: "Acme Corp", spec: good() }, "tenant"],
    ["missing spec", { requestId: "", tenant: "acme", spec: undefined }, "spec"],
    [
      "oversize argument",
      { requestId: "", tenant: "acme", spec: spec({}, ["echo", "x".repeat(8193)]) },
      "spec.template.command[1]",
    ],
    [
      "bad env name",
      { requestId: "", tenant: "acme", spec: { ...good(), template: { ...good().template!, env: { "1BAD": "x" } } } },
      "spec.template.env",
    ],
  ];

  it.each(cases)("refuses %s with INVALID_ARGUMENT naming the field", async (_name, request, field) => {
    const err = await rpcError((cb) => h.jobs.submitJob(request, cb));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details.startsWith(field)).toBe(true);
  });

  it("wrote nothing to KV for any invalid request", async () => {
    expect(await keyCount(h, "jobs")).toBe(0);
    expect(await keyCount(h, "requests")).toBe(0);
    expect(await keyCount(h, "allocs")).toBe(0);
  });

  it("validates every other RPC's input", async () => {
    const invalid = async (invoke: Parameters<typeof rpcError>[0], field: string) => {
      const err = await rpcError(invoke);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(field);
    };
    await invalid((cb) => h.jobs.getJob({ jobId: "" }, cb), "job_id");
    await invalid((cb) => h.jobs.getJob({ jobId: "a.b" }, cb), "job_id");
    await invalid((cb) => h.jobs.cancelJob({ jobId: "x".repeat(65), reason: "" }, cb), "job_id");
    await invalid((cb) => h.jobs.listJobs({ tenant: "", states: [], limit: 5000, pageToken: "" }, cb), "limit");
    await invalid(
      (cb) => h.jobs.listJobs({ tenant: "", states: [99 as pb.JobState], limit: 0, pageToken: "" }, cb),
      "states[0]",
    );
    await invalid((cb) => h.jobs.listJobs({ tenant: "BAD TENANT", states: [], limit: 0, pageToken: "" }, cb), "tenant");
    await invalid((cb) => h.operator.drainAgent({ agentId: "", drain: true }, cb), "agent_id");
    await invalid((cb) => h.operator.listAgents({ region: "eu west", limit: 0, pageToken: "" }, cb), "region");
    await invalid((cb) => h.operator.explainJob({ jobId: "" }, cb), "job_id");
    await invalid((cb) => h.operator.simulate({ spec: undefined, profile: "", seed: 0 }, cb), "spec");
    await invalid(
      (cb) => h.operator.simulate({ spec: { ...spec(), replicas: -1 }, profile: "", seed: 0 }, cb),
      "spec.replicas",
    );
    await invalid((cb) => h.operator.simulate({ spec: spec(), profile: "nope", seed: 0 }, cb), "profile");
    await invalid(
      (cb) => h.operator.setPolicy({ profile: "", profileDocument: "", weights: {}, actor: "" }, cb),
      "profile",
    );
    await invalid(
      (cb) => h.operator.setPolicy({ profile: "no-such", profileDocument: "", weights: {}, actor: "" }, cb),
      "profile",
    );
    await invalid(
      (cb) => h.operator.setPolicy({ profile: "", profileDocument: "{not: [valid", weights: {}, actor: "" }, cb),
      "profile_document",
    );
    await invalid(
      (cb) => h.operator.setPolicy({ profile: "cheapest", profileDocument: "", weights: { cost: -1 }, actor: "" }, cb),
      "weights[cost]",
    );
    await invalid(
      (cb) => h.operator.setPolicy({ profile: "cheapest", profileDocument: "", weights: { nosuch: 1 }, actor: "" }, cb),
      "weights",
    );
    for (const stream of [h.jobs.watchJob({ jobId: "" }), h.jobs.streamLogs({ jobId: "", follow: true, taskId: "" })]) {
      const err = await new Promise<{ code: number; details: string }>((resolve) => stream.on("error", resolve));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain("job_id");
    }
    expect(await keyCount(h, "jobs")).toBe(0);
  });

  it("answers NOT_FOUND for unknown jobs and agents", async () => {
    const failures = [
      await rpcError((cb) => h.jobs.getJob({ jobId: "jdoesnotexist0000" }, cb)),
      await rpcError((cb) => h.jobs.cancelJob({ jobId: "jdoesnotexist0000", reason: "" }, cb)),
      await rpcError((cb) => h.operator.explainJob({ jobId: "jdoesnotexist0000" }, cb)),
      await rpcError((cb) => h.operator.drainAgent({ agentId: "ghost", drain: true }, cb)),
    ];
    expect(failures.map((f) => f.code)).toEqual([
      status.NOT_FOUND,
      status.NOT_FOUND,
      status.NOT_FOUND,
      status.NOT_FOUND,
    ]);
    const stream = h.jobs.watchJob({ jobId: "jdoesnotexist0000" });
    const err = await new Promise<{ code: number }>((resolve) => stream.on("error", resolve));
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it("validates Quote and ListOffers: INVALID_ARGUMENT naming the field", async () => {
    const missing = await rpcError((cb) => h.jobs.quote({ tenant: "acme", spec: undefined }, cb));
    expect([missing.code, missing.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("spec")]);
    const bad = await rpcError((cb) => h.jobs.quote({ tenant: "acme", spec: spec({ replicas: -1 }) }, cb));
    expect([bad.code, bad.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("spec.replicas")]);
    const sort = await rpcError((cb) => h.jobs.listOffers(pb.ListOffersRequest.fromPartial({ sortBy: "cost" }), cb));
    expect([sort.code, sort.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("sort_by")]);
    const receipt = await rpcError((cb) => h.billing.getReceipt({ receiptId: "nope" }, cb));
    expect([receipt.code, receipt.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("receipt_id")]);
    const unknown = await rpcError((cb) => h.billing.getReceipt({ receiptId: "rcpt:jnope-0:1" }, cb));
    expect(unknown.code).toBe(status.NOT_FOUND);
    const limits = await rpcError((cb) =>
      h.billing.setTenantLimits(
        { limits: { tenant: "", hourlyCapMicros: -1, monthlyCapMicros: 0, updatedAtUnixMs: 0 }, actor: "" },
        cb,
      ),
    );
    expect([limits.code, limits.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("limits.tenant")]);
  });
});

describe("scheduler API: service", () => {
  let h: Harness;
  let agent: FakeAgent;
  beforeAll(async () => {
    h = await startHarness({ metricsPort: 0 });
    agent = new FakeAgent(h, "fake-a1", "eu-west", 8).start();
    await waitFor(
      async () =>
        (
          await rpc<pb.ListAgentsResponse>((cb) =>
            h.operator.listAgents({ region: "eu-west", limit: 0, pageToken: "" }, cb),
          )
        ).agents.length === 1,
      { what: "fake agent registered" },
    );
  });
  afterAll(async () => {
    agent?.silence();
    await h?.stop();
  });

  it("answers health checks with SERVING", async () => {
    const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
    const client = new Health(h.scheduler.grpcAddress, credentials.createInsecure()) as unknown as {
      check(req: { service: string }, cb: (err: ServiceError | null, res: { status: string | number }) => void): void;
      close(): void;
    };
    for (const service of ["", "capa.v1.JobService", "capa.v1.OperatorService"]) {
      const res = await rpc<{ status: string | number }>((cb) => client.check({ service }, cb));
      expect(res.status === "SERVING" || res.status === 1).toBe(true);
    }
    client.close();
  });

  it("serves reflection listing the capa services", async () => {
    const dir = join(createRequire(import.meta.url).resolve("@grpc/reflection"), "../../proto");
    const def = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [dir] });
    const pkg = loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (a: string, c: ChannelCredentials) => ReflectionClient } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(h.scheduler.grpcAddress, credentials.createInsecure());
    const call = client.ServerReflectionInfo();
    const response = new Promise<{ listServicesResponse: { service: { name: string }[] } }>((resolve, reject) => {
      call.on("data", resolve);
      call.on("error", reject);
    });
    call.write({ listServices: "*" });
    const names = (await response).listServicesResponse.service.map((s) => s.name);
    call.end();
    client.close();
    expect(names).toEqual(expect.arrayContaining(["capa.v1.JobService", "capa.v1.OperatorService"]));
  });

  it("dedupes by request id per tenant and refuses a reused id with another spec", async () => {
    const s = spec({}, ["echo", "once"]);
    const first = await submit(h, s, { requestId: "req-1" });
    const again = await submit(h, s, { requestId: "req-1" });
    expect(first.deduplicated).toBe(false);
    expect(again).toMatchObject({ deduplicated: true, job: { id: first.job!.id } });
    const otherTenant = await submit(h, s, { requestId: "req-1", tenant: "globex" });
    expect(otherTenant.job!.id).not.toBe(first.job!.id);
    const err = await rpcError((cb) =>
      h.jobs.submitJob({ requestId: "req-1", tenant: "acme", spec: spec({}, ["echo", "different"]) }, cb),
    );
    expect(err.code).toBe(status.ALREADY_EXISTS);
    expect(err.details).toContain("request_id");
    expect(first.job!.id).toMatch(/^j[a-z2-7]{16}$/);
    expect(first.job!.tasks.map((t) => t.id)).toEqual([`${first.job!.id}-0`]);
  });

  it("finishes a submission that stopped between the request record and the job", async () => {
    const s = spec({}, ["echo", "crash"]);
    const first = await submit(h, s, { requestId: "crash-1", tenant: "crashy" });
    // Simulate the crash: the request record stays, the job is gone.
    await h.store.jobs.purge(first.job!.id);
    const retried = await submit(h, s, { requestId: "crash-1", tenant: "crashy" });
    expect(retried).toMatchObject({ deduplicated: true, job: { id: first.job!.id } });
    expect((await getJob(h, first.job!.id)).id).toBe(first.job!.id);
  });

  it("lists jobs by tenant and state, newest first, with a limit", async () => {
    const a = await submit(h, spec({ gpusPerReplica: 64 }, ["true"]), { tenant: "lister" });
    const b = await submit(h, spec({ gpusPerReplica: 64 }, ["true"]), { tenant: "lister" });
    await submit(h, spec({ gpusPerReplica: 64 }, ["true"]), { tenant: "someone-else" });
    const all = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: "lister", states: [], limit: 0, pageToken: "" }, cb),
    );
    expect(all.jobs.map((j) => j.id).sort()).toEqual([a.job!.id, b.job!.id].sort());
    const one = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: "lister", states: [], limit: 1, pageToken: "" }, cb),
    );
    expect(one.jobs).toHaveLength(1);
    const done = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: "lister", states: [pb.JobState.JOB_STATE_SUCCEEDED], limit: 0, pageToken: "" }, cb),
    );
    expect(done.jobs).toHaveLength(0);
  });

  it("explains a placement and an unplaceable job, and simulates without committing", async () => {
    const { job } = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { tenant: "explain" });
    const placed = await waitFor(
      async () =>
        (await rpc<pb.ExplainJobResponse>((cb) => h.operator.explainJob({ jobId: job!.id }, cb)).catch(() => undefined))
          ?.explanation,
      { what: "an explanation" },
    );
    expect(placed.outcome).toBe("placed");
    expect(placed.chosen[0]?.agentId).toBe("fake-a1");
    const big = await submit(h, spec({ gpusPerReplica: 16 }, ["true"]), { tenant: "explain" });
    const never = await waitFor(
      async () =>
        (
          await rpc<pb.ExplainJobResponse>((cb) => h.operator.explainJob({ jobId: big.job!.id }, cb)).catch(
            () => undefined,
          )
        )?.explanation,
      { what: "an explanation" },
    );
    expect(never.outcome).toBe("unplaceable");
    expect(Object.keys(never.rejections).length).toBeGreaterThan(0);

    const before = await agent.assignments();
    const sim = await rpc<pb.SimulateResponse>((cb) =>
      h.operator.simulate({ spec: spec({ gpusPerReplica: 1 }, []), profile: "balanced", seed: 7 }, cb),
    );
    expect(sim.explanation?.profile).toBe("balanced");
    expect(sim.explanation?.seed).toBe(7);
    expect(await agent.assignments()).toEqual(before);
  });

  it("gets and sets the policy with who, when and revision, and keeps it across a restart", async () => {
    const initial = await rpc<pb.GetPolicyResponse>((cb) => h.operator.getPolicy({}, cb));
    expect(initial.policy?.availableProfiles).toEqual(expect.arrayContaining(["cheapest", "balanced"]));
    const set = await rpc<pb.SetPolicyResponse>((cb) =>
      h.operator.setPolicy({ profile: "balanced", profileDocument: "", weights: { cost: 80 }, actor: "ops@test" }, cb),
    );
    expect(set.policy).toMatchObject({ profile: "balanced", updatedBy: "ops@test" });
    expect(set.policy!.revision).toBeGreaterThan(0);
    expect(JSON.parse(set.policy!.profileJson).weights.cost).toBe(80);
    const doc = JSON.stringify({ name: "gpu-thrifty", weights: { cost: 10, binpack: 1 } });
    const custom = await rpc<pb.SetPolicyResponse>((cb) =>
      h.operator.setPolicy({ profile: "", profileDocument: doc, weights: {}, actor: "ops@test" }, cb),
    );
    expect(custom.policy?.profile).toBe("gpu-thrifty");
    expect(custom.policy?.availableProfiles).toContain("gpu-thrifty");
    await h.restartScheduler({ metricsPort: 0 });
    const after = await rpc<pb.GetPolicyResponse>((cb) => h.operator.getPolicy({}, cb));
    expect(after.policy).toMatchObject({
      profile: "gpu-thrifty",
      updatedBy: "ops@test",
      revision: custom.policy!.revision,
    });
    const stored = new TypedKv(h.store.policy, jsonCodec<{ profile: string }>());
    expect((await stored.get("active"))?.value.profile).toBe("gpu-thrifty");
  });

  it("drains an agent (persisted): no new work until it is undrained", async () => {
    const drained = await rpc<pb.DrainAgentResponse>((cb) =>
      h.operator.drainAgent({ agentId: "fake-a1", drain: true }, cb),
    );
    expect(drained.agent?.status).toBe("draining");
    const stored = new TypedKv(h.store.agents, jsonCodec<{ draining: boolean }>());
    expect((await stored.get("fake-a1"))?.value.draining).toBe(true);
    const { job } = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { tenant: "drain" });
    const waiting = await waitFor(
      async () => {
        const j = await getJob(h, job!.id);
        // The only agent is drained: nothing could hold the job now, so it says UNSCHEDULABLE (and keeps waiting).
        return /^(UNSCHEDULABLE: |waiting for capacity)/.test(j.reason) && j;
      },
      { what: "job waiting while the only agent drains" },
    );
    expect(stateName(waiting.state)).toBe("PENDING");
    await rpc((cb) => h.operator.drainAgent({ agentId: "fake-a1", drain: false }, cb));
    await waitFor(async () => stateName((await getJob(h, job!.id)).state) === "PLACED", {
      what: "placed after undrain",
    });
  });

  it("serves Prometheus metrics", async () => {
    const address = h.scheduler.metricsAddress;
    expect(address).toBeDefined();
    const text = await (await fetch(`http://${address}/metrics`)).text();
    expect(text).toContain("capa_jobs_submitted_total");
    expect(text).toMatch(/capa_scheduler_leader 1/);
  });
});
