/**
 * The gRPC security suite: every gRPC attack of issue 7's "Why", tried as a hostile caller would, over a real
 * channel against a real scheduler and nats-server. Each try is recorded in an AttackTable as denied, leaked (an
 * answer carried another tenant's data or a secret, or a state changed) or allowed (it went through); the table is
 * printed and every row must have 0 leaked and 0 unexpected allows. Controls check that the legitimate owner
 * still can.
 */

import { join } from "node:path";
import * as pb from "@capa/api";
import { BUCKETS, decode, INTAKE_STREAMS } from "@capa/bus";
import { BUDGET_BUCKET } from "@capa/ledger";
import { startScheduler } from "@capa/scheduler";
import { AttackTable, waitFor } from "@capa/testkit";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Clients,
  clientsFor,
  FakeAgent,
  type Harness,
  httpCall,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
} from "./scheduler-harness.js";

const SECRET = "hf_victim_secret_7a9f1c";
const PLAIN_SECRET = "plain_env_token_5b2e";

/** Reads a server stream to its end: what it sent, and the error it ended with (if any). */
function drain(stream: NodeJS.EventEmitter): Promise<{ err: ServiceError | undefined; received: unknown[] }> {
  const received: unknown[] = [];
  return new Promise((resolve) => {
    stream.on("data", (m: unknown) => received.push(m));
    stream.on("error", (err: ServiceError) => resolve({ err, received }));
    stream.on("end", () => resolve({ err: undefined, received }));
  });
}

describe("gRPC security: every attack denied, nothing leaked", () => {
  let h: Harness;
  let agent: FakeAgent;
  let victim: Clients;
  let mallory: Clients;
  let provider: Clients;
  let otherProvider: Clients;
  let operator: Clients;
  let victimJobId = "";
  let victimReceiptId = "";
  const table = new AttackTable();

  beforeAll(async () => {
    h = await startHarness({ defaultMaxPriority: 50 });
    agent = new FakeAgent(h, "sec-agent-1").start();
    victim = await h.asTenant("victim");
    mallory = await h.asTenant("mallory");
    provider = h.as(await h.mintKey("provider", { provider: "fake" }));
    otherProvider = h.as(await h.mintKey("provider", { provider: "evil" }));
    operator = h.as(await h.mintKey("operator", { name: "ops" }));
    await waitFor(
      async () =>
        (await rpc<pb.ListAgentsResponse>((cb) => h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb)))
          .agents.length === 1,
      { what: "the agent listed" },
    );
    const job = spec({}, ["sh", "-c", "echo victim"]);
    job.template!.env = { HF_TOKEN: SECRET, PLAIN: PLAIN_SECRET };
    job.template!.secretEnvNames = ["HF_TOKEN"];
    job.expectedDurationSeconds = 60;
    const submitted = await rpc<pb.SubmitJobResponse>((cb) =>
      victim.jobs.submitJob({ requestId: "victim-1", tenant: "", spec: job }, cb),
    );
    victimJobId = submitted.job!.id;
    // Run it to the end on the fake agent, so there is a bill and a receipt to go after.
    const [assignment] = await waitFor(async () => {
      const a = await agent.assignments();
      return a.length > 0 && a;
    });
    expect(assignment!.template.env.HF_TOKEN).toBe(SECRET); // delivered, in clear, to the agent that runs it
    await agent.report(assignment!, "running");
    await agent.report(assignment!, "succeeded");
    victimReceiptId = await waitFor(
      async () => {
        const r = await rpc<pb.ListReceiptsResponse>((cb) =>
          victim.billing.listReceipts(
            { tenant: "", agentId: "", jobId: victimJobId, fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
            cb,
          ),
        );
        return r.receipts[0]?.receiptId;
      },
      { what: "the victim's receipt", timeoutMs: 30_000 },
    );
  });

  afterAll(async () => {
    agent?.silence();
    await h?.stop();
  });

  /** Whether an answer carries anything of the victim's (its job, its secret values, its receipt). */
  const leaks = (answer: unknown) => {
    const text = JSON.stringify(answer);
    return (
      text.includes(victimJobId) ||
      text.includes(SECRET) ||
      text.includes(PLAIN_SECRET) ||
      text.includes(victimReceiptId) ||
      text.includes('"victim"')
    );
  };

  /** One try: refused with one of `codes` → denied; answered → leaked when it carries victim data, else allowed. */
  async function attempt<T>(
    attack: string,
    codes: status[],
    call: (cb: (err: ServiceError | null, res: T) => void) => unknown,
    judge: (answer: T) => "denied" | "leaked" | "allowed" = (a) => (leaks(a) ? "leaked" : "allowed"),
  ): Promise<void> {
    try {
      const answer = await rpc(call);
      table.record(attack, judge(answer));
    } catch (err) {
      const e = err as ServiceError;
      // A refusal may echo what the attacker sent (the job id); it must carry no secret.
      const secretIn = e.details.includes(SECRET) || e.details.includes(PLAIN_SECRET);
      if (codes.includes(e.code)) table.record(attack, secretIn ? "leaked" : "denied");
      else {
        table.record(attack, "allowed");
        throw new Error(`${attack}: unexpected status ${status[e.code]} ${e.details}`);
      }
    }
  }

  const U = [status.UNAUTHENTICATED];
  const PD = [status.PERMISSION_DENIED];
  const NF = [status.NOT_FOUND];
  const listAll = { tenant: "", states: [], limit: 0, pageToken: "" };

  it("refuses calls without a valid credential (UNAUTHENTICATED)", async () => {
    const anon = new pb.JobServiceClient(h.scheduler.grpcAddress, credentials.createInsecure());
    try {
      await attempt("no token: ListJobs (all tenants, env secrets)", U, (cb) => anon.listJobs(listAll, cb));
      await attempt("no token: CancelJob", U, (cb) => anon.cancelJob({ jobId: victimJobId, reason: "x" }, cb));
      for (const header of ["Bearer garbage", "garbage", "Bearer ", `Basic ${h.adminToken}`]) {
        const md = new Metadata();
        md.set("authorization", header);
        await attempt("garbage token: ListJobs", U, (cb) => anon.listJobs(listAll, md, cb));
      }
      const forged = clientsFor(h.scheduler.grpcAddress, `capa_${h.adminToken.slice(5, 21)}_${"A".repeat(43)}`);
      await attempt("admin key id with a forged secret", U, (cb) => forged.jobs.listJobs(listAll, cb));
      forged.close();
    } finally {
      anon.close();
    }
  });

  it("refuses a revoked key at once", async () => {
    const created = await rpc<pb.CreateKeyResponse>((cb) =>
      h.keys.createKey({ role: "tenant", name: "leaver", tenant: "mallory", provider: "" }, cb),
    );
    const leaver = h.as(created.token);
    await rpc((cb) => leaver.jobs.listJobs(listAll, cb)); // works before
    await rpc((cb) => h.keys.revokeKey({ keyId: created.key!.keyId }, cb));
    await attempt("revoked key: ListJobs", U, (cb) => leaver.jobs.listJobs(listAll, cb));
    await attempt("revoked key: SubmitJob", U, (cb) =>
      leaver.jobs.submitJob({ requestId: "r", tenant: "", spec: spec() }, cb),
    );
  });

  it("a key revoked on one replica stops working on another (its key table follows the KV watch)", async () => {
    const replica = await startScheduler({
      natsUrl: h.nats.url,
      natsNkeySeed: h.schedulerSeed,
      grpcAddress: "127.0.0.1:0",
      logger: silent,
      leaseTtlMs: 3_000,
      dataDir: join(h.dataDir, "replica-2"),
    });
    try {
      expect(replica.adminCredentialsFile).toBeUndefined(); // an admin key existed: none made
      const created = await rpc<pb.CreateKeyResponse>((cb) =>
        h.keys.createKey({ role: "tenant", name: "roamer", tenant: "mallory", provider: "" }, cb),
      );
      const there = clientsFor(replica.grpcAddress, created.token);
      try {
        await waitFor(
          async () =>
            rpc((cb) => there.jobs.listJobs(listAll, cb)).then(
              () => true,
              () => false,
            ),
          {
            what: "the new key known on the second replica",
          },
        );
        await rpc((cb) => h.keys.revokeKey({ keyId: created.key!.keyId }, cb));
        await waitFor(
          async () =>
            rpc((cb) => there.jobs.listJobs(listAll, cb)).then(
              () => false,
              (e: ServiceError) => e.code === status.UNAUTHENTICATED,
            ),
          { what: "the revoked key refused by the second replica" },
        );
        await attempt("revoked key on another replica", U, (cb) => there.jobs.listJobs(listAll, cb));
      } finally {
        there.close();
      }
    } finally {
      await replica.stop();
    }
  });

  it("keeps every tenant to its own jobs: another tenant's job is NOT_FOUND", async () => {
    await attempt(
      "ListJobs without tenant reads other tenants' jobs and env",
      PD,
      (cb) => mallory.jobs.listJobs(listAll, cb),
      (a) => (leaks(a) ? "leaked" : "denied"),
    );
    await attempt("ListJobs naming another tenant", PD, (cb) =>
      mallory.jobs.listJobs({ ...listAll, tenant: "victim" }, cb),
    );
    await attempt("GetJob of another tenant's job", NF, (cb) => mallory.jobs.getJob({ jobId: victimJobId }, cb));
    await attempt("CancelJob of another tenant's job", NF, (cb) =>
      mallory.jobs.cancelJob({ jobId: victimJobId, reason: "mine now" }, cb),
    );
    await attempt("ExplainJob of another tenant's job", NF, (cb) =>
      mallory.operator.explainJob({ jobId: victimJobId }, cb),
    );
    for (const [attack, stream] of [
      ["WatchJob of another tenant's job", () => mallory.jobs.watchJob({ jobId: victimJobId })],
      [
        "StreamLogs of another tenant's job",
        () => mallory.jobs.streamLogs({ jobId: victimJobId, follow: false, taskId: "" }),
      ],
    ] as const) {
      const received: unknown[] = [];
      const outcome = await new Promise<ServiceError | undefined>((resolve) => {
        const s = stream();
        s.on("data", (m: unknown) => received.push(m));
        s.on("error", (e: ServiceError) => resolve(e));
        s.on("end", () => resolve(undefined));
      });
      if (outcome?.code === status.NOT_FOUND && received.length === 0) table.record(attack, "denied");
      else table.record(attack, received.some(leaks) ? "leaked" : "allowed");
    }
    // No existence leak: another tenant's job reads exactly like a job that never existed.
    const missing = (await rpc((cb) => mallory.jobs.getJob({ jobId: "jdoesnotexist0000" }, cb)).catch(
      (e: ServiceError) => e,
    )) as ServiceError;
    const theirs = (await rpc((cb) => mallory.jobs.getJob({ jobId: victimJobId }, cb)).catch(
      (e: ServiceError) => e,
    )) as ServiceError;
    expect(theirs.code).toBe(missing.code);
    expect(theirs.details.replace(victimJobId, "ID")).toBe(missing.details.replace("jdoesnotexist0000", "ID"));
    const still = await rpc<pb.GetJobResponse>((cb) => victim.jobs.getJob({ jobId: victimJobId }, cb));
    expect(stateName(still.job!.state)).not.toBe("CANCELLED");
  });

  it("keeps every tenant to its own schedules: another tenant's schedule is NOT_FOUND, its secrets masked", async () => {
    const job = spec({ gpusPerReplica: 0 }, ["train"]);
    job.template!.env = { HF_TOKEN: SECRET };
    job.template!.secretEnvNames = ["HF_TOKEN"];
    const own = await rpc<pb.ApplyScheduleResponse>((cb) =>
      victim.schedules.applySchedule(
        { tenant: "", spec: pb.ScheduleSpec.fromPartial({ name: "victim-nightly", cron: "0 3 * * *", job }) },
        cb,
      ),
    );
    expect(own.schedule!.spec!.job!.template!.env.HF_TOKEN).toBe("***");
    const name = "victim-nightly";
    await attempt("GetSchedule of another tenant's schedule", NF, (cb) =>
      mallory.schedules.getSchedule({ tenant: "", name }, cb),
    );
    await attempt("GetSchedule naming another tenant", PD, (cb) =>
      mallory.schedules.getSchedule({ tenant: "victim", name }, cb),
    );
    await attempt("ListSchedules naming another tenant", PD, (cb) =>
      mallory.schedules.listSchedules({ tenant: "victim", limit: 0, pageToken: "" }, cb),
    );
    await attempt("TriggerSchedule of another tenant's schedule", NF, (cb) =>
      mallory.schedules.triggerSchedule({ tenant: "", name, triggerId: "", reason: "mine now" }, cb),
    );
    await attempt("TriggerSchedule naming another tenant", PD, (cb) =>
      mallory.schedules.triggerSchedule({ tenant: "victim", name, triggerId: "", reason: "" }, cb),
    );
    await attempt("DeleteSchedule of another tenant's schedule", NF, (cb) =>
      mallory.schedules.deleteSchedule({ tenant: "", name }, cb),
    );
    await attempt("ApplySchedule over another tenant's schedule", PD, (cb) =>
      mallory.schedules.applySchedule({ tenant: "victim", spec: pb.ScheduleSpec.fromPartial({ name, job }) }, cb),
    );
    await attempt("TriggerSchedule by a provider", PD, (cb) =>
      provider.schedules.triggerSchedule({ tenant: "victim", name, triggerId: "", reason: "" }, cb),
    );
    const mine = await rpc<pb.ListSchedulesResponse>((cb) =>
      mallory.schedules.listSchedules({ tenant: "", limit: 0, pageToken: "" }, cb),
    );
    table.record("ListSchedules of the own tenant shows another's", leaks(mine) ? "leaked" : "denied");
    const still = await rpc<pb.GetScheduleResponse>((cb) => victim.schedules.getSchedule({ tenant: "", name }, cb));
    expect(still.schedule!.pendingTriggers).toBe(0);
    expect(still.schedule!.runs).toEqual([]);
  });

  it("keeps money and limits to their owners", async () => {
    await attempt("SubmitJob billed to another tenant", PD, (cb) =>
      mallory.jobs.submitJob({ requestId: "steal", tenant: "victim", spec: spec() }, cb),
    );
    await attempt("GetInvoice of another tenant", PD, (cb) =>
      mallory.billing.getInvoice({ tenant: "victim", fromUnixMs: 0, toUnixMs: 0, jobId: "" }, cb),
    );
    await attempt(
      "GetInvoice without tenant (all tenants)",
      PD,
      (cb) => mallory.billing.getInvoice({ tenant: "", fromUnixMs: 0, toUnixMs: 0, jobId: "" }, cb),
      (a) => (leaks(a) ? "leaked" : "denied"),
    );
    await attempt("GetReceipt of another tenant's receipt", NF, (cb) =>
      mallory.billing.getReceipt({ receiptId: victimReceiptId }, cb),
    );
    await attempt("ListReceipts of another tenant", PD, (cb) =>
      mallory.billing.listReceipts(
        { tenant: "victim", agentId: "", jobId: "", fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
        cb,
      ),
    );
    await attempt(
      "ListReceipts by agent (every tenant's)",
      PD,
      (cb) =>
        mallory.billing.listReceipts(
          { tenant: "", agentId: agent.agentId, jobId: "", fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
          cb,
        ),
      (a) => (leaks(a) ? "leaked" : "denied"),
    );
    await attempt(
      "ListReceipts by the victim's job id",
      PD,
      (cb) =>
        mallory.billing.listReceipts(
          { tenant: "", agentId: "", jobId: victimJobId, fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
          cb,
        ),
      (a) => (leaks(a) ? "leaked" : "denied"),
    );
    await attempt("GetTenantLimits of another tenant", PD, (cb) =>
      mallory.billing.getTenantLimits({ tenant: "victim" }, cb),
    );
    await attempt("Quote as another tenant", PD, (cb) => mallory.jobs.quote({ tenant: "victim", spec: spec() }, cb));
    for (const tenant of ["mallory", "victim"])
      await attempt("SetTenantLimits by a tenant (own or another's)", PD, (cb) =>
        mallory.billing.setTenantLimits(
          { limits: { tenant, hourlyCapMicros: 0, monthlyCapMicros: 0, updatedAtUnixMs: 0 }, actor: "m" },
          cb,
        ),
      );
    await attempt("SetTenantPolicy by a tenant (raise own priority ceiling)", PD, (cb) =>
      mallory.auth.setTenantPolicy(
        { policy: { tenant: "mallory", maxPriority: 1000, updatedBy: "", updatedAtUnixMs: 0 } },
        cb,
      ),
    );
  });

  it("refuses operator verbs to tenants and providers", async () => {
    for (const [who, c] of [
      ["tenant", () => mallory],
      ["provider", () => provider],
    ] as const) {
      await attempt(`SetPolicy by a ${who}`, PD, (cb) =>
        c().operator.setPolicy({ profile: "cheapest", profileDocument: "", weights: {}, actor: who }, cb),
      );
      await attempt(`DrainAgent by a ${who}`, PD, (cb) =>
        c().operator.drainAgent({ agentId: agent.agentId, drain: true }, cb),
      );
      await attempt(`ListAgents by a ${who}`, PD, (cb) =>
        c().operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
      );
      await attempt(`ListServices by a ${who}`, PD, (cb) =>
        c().services.listServices({ tenant: "victim", limit: 0, pageToken: "" }, cb),
      );
      await attempt(`ListAudit by a ${who}`, PD, (cb) =>
        c().audit.listAudit({ fromUnixMs: 0, toUnixMs: 0, actor: "", method: "", tenant: "", limit: 0 }, cb),
      );
      await attempt(`Replay by a ${who}`, PD, (cb) =>
        c().operator.replay(
          pb.ReplayRequest.fromPartial({
            traceCsv: "job_id,submit_s,duration_s,gpus,gpu_model,kind\nj1,0,60,1,,batch\n",
          }),
          cb,
        ),
      );
    }
    const agents = await rpc<pb.ListAgentsResponse>((cb) =>
      h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
    );
    expect(agents.agents[0]!.status).not.toMatch(/drain/i);
  });

  it("refuses priority above the tenant's ceiling (no preempting other tenants at 1000)", async () => {
    for (const priority of [51, 1000])
      await attempt("SubmitJob with priority above the ceiling", [status.INVALID_ARGUMENT], (cb) =>
        mallory.jobs.submitJob({ requestId: `prio-${priority}`, tenant: "", spec: spec({ priority }) }, cb),
      );
    await rpc((cb) =>
      h.keys.setTenantPolicy({ policy: { tenant: "mallory", maxPriority: 5, updatedBy: "", updatedAtUnixMs: 0 } }, cb),
    );
    await attempt("SubmitJob above an operator-lowered ceiling", [status.INVALID_ARGUMENT], (cb) =>
      mallory.jobs.submitJob({ requestId: "prio-6", tenant: "", spec: spec({ priority: 6 }) }, cb),
    );
  });

  it("keeps key management to operators, and operator keys to admins", async () => {
    for (const [who, c] of [
      ["tenant", () => mallory],
      ["provider", () => provider],
    ] as const) {
      await attempt(`CreateKey by a ${who}`, PD, (cb) =>
        c().auth.createKey({ role: "admin", name: "x", tenant: "", provider: "" }, cb),
      );
      await attempt(`ListKeys by a ${who}`, PD, (cb) => c().auth.listKeys({ role: "", tenant: "" }, cb));
      await attempt(`RevokeKey by a ${who}`, PD, (cb) => c().auth.revokeKey({ keyId: h.adminToken.slice(5, 21) }, cb));
    }
    await attempt("CreateKey admin by an operator", PD, (cb) =>
      operator.auth.createKey({ role: "admin", name: "x", tenant: "", provider: "" }, cb),
    );
    await attempt("RevokeKey of the admin by an operator", PD, (cb) =>
      operator.auth.revokeKey({ keyId: h.adminToken.slice(5, 21) }, cb),
    );
    // The admin key still works.
    await rpc((cb) => h.keys.whoAmI({}, cb));
  });

  it("keeps providers to their own agents' money and off tenant verbs", async () => {
    await attempt("provider calls SubmitJob", PD, (cb) =>
      provider.jobs.submitJob({ requestId: "p", tenant: "victim", spec: spec() }, cb),
    );
    await attempt("provider calls ListJobs", PD, (cb) => provider.jobs.listJobs(listAll, cb));
    await attempt("provider calls GetInvoice", PD, (cb) =>
      provider.billing.getInvoice({ tenant: "victim", fromUnixMs: 0, toUnixMs: 0, jobId: "" }, cb),
    );
    await attempt("GetEarnings of another provider's agent", PD, (cb) =>
      otherProvider.billing.getEarnings({ agentId: agent.agentId, provider: "", fromUnixMs: 0, toUnixMs: 0 }, cb),
    );
    await attempt("GetEarnings naming another provider", PD, (cb) =>
      otherProvider.billing.getEarnings({ agentId: "", provider: "fake", fromUnixMs: 0, toUnixMs: 0 }, cb),
    );
    await attempt("ListReceipts of another provider's agent", PD, (cb) =>
      otherProvider.billing.listReceipts(
        { tenant: "", agentId: agent.agentId, jobId: "", fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
        cb,
      ),
    );
    await attempt("GetReceipt of another provider's allocation", NF, (cb) =>
      otherProvider.billing.getReceipt({ receiptId: victimReceiptId }, cb),
    );
  });

  it("controls: owners still can, secrets are masked even for them", async () => {
    const own = await rpc<pb.GetJobResponse>((cb) => victim.jobs.getJob({ jobId: victimJobId }, cb));
    expect(own.job!.spec!.template!.env).toEqual({ HF_TOKEN: "***", PLAIN: PLAIN_SECRET });
    const listed = await rpc<pb.ListJobsResponse>((cb) => victim.jobs.listJobs(listAll, cb));
    expect(listed.jobs.map((j) => j.id)).toEqual([victimJobId]);
    expect(JSON.stringify(listed)).not.toContain(SECRET);
    const earnings = await rpc<pb.GetEarningsResponse>((cb) =>
      provider.billing.getEarnings({ agentId: agent.agentId, provider: "", fromUnixMs: 0, toUnixMs: 0 }, cb),
    );
    expect(earnings.lines.length).toBeGreaterThan(0);
    const receipt = await rpc<pb.GetReceiptResponse>((cb) =>
      provider.billing.getReceipt({ receiptId: victimReceiptId }, cb),
    );
    expect(receipt.receipt?.receiptId).toBe(victimReceiptId);
    const all = await rpc<pb.ListJobsResponse>((cb) => operator.jobs.listJobs(listAll, cb));
    expect(all.jobs.some((j) => j.id === victimJobId)).toBe(true);
    const health = await rpc<pb.WhoAmIResponse>((cb) => mallory.auth.whoAmI({}, cb));
    expect(health.key).toMatchObject({ role: "tenant", tenant: "mallory" });
  });

  it("keeps every tenant to its own jobs acknowledged from the intake and not written yet", async () => {
    // A tenant of its own, so its budget document is a new key: while KV_capa_budgets is full (max_msgs at its
    // count, discard new) its first reservation is refused with a store error, as a budgets stream without a leader
    // answers. The submission is acknowledged from the intake, and the materialiser cannot write it either: the job
    // stays intake-only for as long as this test holds the bucket (deterministic; the SIGKILL version of this is
    // test/src/submit-intake.test.ts).
    const owner = await h.asTenant("ivictim");
    const jsm = h.store.jsm;
    const budgets = `KV_${BUDGET_BUCKET}`;
    const info = await jsm.streams.info(budgets);
    expect(info.config.discard).toBe("new");
    await jsm.streams.update(budgets, { ...info.config, max_msgs: Math.max(1, info.state.messages) });
    const intakeCount = async () =>
      (await Promise.all(INTAKE_STREAMS.map(async (n) => (await jsm.streams.info(n)).state.messages))).reduce(
        (a, b) => a + b,
        0,
      );
    const jobsKv = await new Kvm(h.nc).open(BUCKETS.jobs, { allow_direct: false });
    const written = async (id: string) => {
      const e = await jobsKv.get(id);
      return e && e.operation === "PUT" ? decode.job(e.value) : undefined;
    };
    let restored = false;
    const restore = async () => {
      if (!restored) await jsm.streams.update(budgets, info.config);
      restored = true;
    };
    try {
      const priced = spec({ maxPriceMicrosPerGpuHour: 2_000_000, expectedDurationSeconds: 3_600 });
      priced.template!.env = { HF_TOKEN: SECRET };
      priced.template!.secretEnvNames = ["HF_TOKEN"];
      const acked = await rpc<pb.SubmitJobResponse>((cb) =>
        owner.jobs.submitJob({ requestId: "intake-1", tenant: "", spec: priced }, cb),
      );
      const id = acked.job!.id;
      expect(await written(id)).toBeUndefined();
      expect(await intakeCount()).toBeGreaterThan(0);
      const theirs = (a: unknown) => {
        const text = JSON.stringify(a);
        return text.includes(id) || text.includes(SECRET) || text.includes('"ivictim"');
      };
      const judged = (a: unknown) => (theirs(a) ? "leaked" : "denied");

      await attempt("GetJob of another tenant's job not written yet (intake)", NF, (cb) =>
        mallory.jobs.getJob({ jobId: id }, cb),
      );
      await attempt(
        "ListJobs lists another tenant's job not written yet",
        PD,
        (cb) => mallory.jobs.listJobs(listAll, cb),
        judged,
      );
      await attempt(
        "ListJobs of pending jobs lists another tenant's job not written yet",
        PD,
        (cb) => mallory.jobs.listJobs({ ...listAll, states: [pb.JobState.JOB_STATE_PENDING] }, cb),
        judged,
      );
      await attempt("ListJobs naming the tenant of a job not written yet", PD, (cb) =>
        mallory.jobs.listJobs({ ...listAll, tenant: "ivictim" }, cb),
      );
      const messages = await intakeCount();
      await attempt("CancelJob of another tenant's job not written yet", NF, (cb) =>
        mallory.jobs.cancelJob({ jobId: id, reason: "mine now" }, cb),
      );
      await attempt("CancelJob of a job not written yet by a provider", PD, (cb) =>
        provider.jobs.cancelJob({ jobId: id, reason: "" }, cb),
      );
      // Refused before any cancel intent is written.
      expect(await intakeCount()).toBe(messages);
      for (const [attack, open] of [
        ["WatchJob of another tenant's job not written yet", () => mallory.jobs.watchJob({ jobId: id })],
        [
          "StreamLogs of another tenant's job not written yet",
          () => mallory.jobs.streamLogs({ jobId: id, follow: false, taskId: "" }),
        ],
        [
          "StreamLogs (follow) of another tenant's job not written yet",
          () => mallory.jobs.streamLogs({ jobId: id, follow: true, taskId: "" }),
        ],
      ] as const) {
        const { err, received } = await drain(open());
        if (err?.code === status.NOT_FOUND && received.length === 0) table.record(attack, "denied");
        else table.record(attack, received.some(theirs) ? "leaked" : "allowed");
      }
      // The web console's JSON routes answer it like a written job: another tenant's list leaves it out, its page
      // is 404 (as a job that does not exist), naming its tenant is 403.
      const malloryToken = await h.mintKey("tenant", { tenant: "mallory" });
      const ownerToken = await h.mintKey("tenant", { tenant: "ivictim" });
      const consoleList = await httpCall(h, "/api/v1/console/jobs", { token: malloryToken });
      table.record(
        "console jobs list shows another tenant's job not written yet",
        consoleList.status === 200 && !theirs(consoleList.body)
          ? "denied"
          : theirs(consoleList.body)
            ? "leaked"
            : "allowed",
      );
      const consolePage = await httpCall(h, `/api/v1/console/jobs/${id}`, { token: malloryToken });
      const absentId = "jdoesnotexist0000";
      const absentPage = await httpCall(h, `/api/v1/console/jobs/${absentId}`, { token: malloryToken });
      table.record(
        "console page of another tenant's job not written yet",
        // The 404 names the id the caller asked for (its own input); anything else of the job would be a leak.
        consolePage.text.includes(SECRET) || consolePage.text.includes('"ivictim"')
          ? "leaked"
          : consolePage.status === 404 &&
              consolePage.text.replaceAll(id, "<id>") === absentPage.text.replaceAll(absentId, "<id>")
            ? "denied"
            : "allowed",
      );
      const consoleNamed = await httpCall(h, "/api/v1/console/jobs?tenant=ivictim", { token: malloryToken });
      table.record(
        "console jobs list naming the tenant of a job not written yet",
        consoleNamed.status === 403 ? "denied" : theirs(consoleNamed.body) ? "leaked" : "allowed",
      );
      // Controls: the owner's console lists it (pending, counted) and shows its page; no secret in either.
      const ownList = await httpCall(h, "/api/v1/console/jobs", { token: ownerToken });
      expect(ownList.status).toBe(200);
      expect(ownList.text).toContain(id);
      expect(ownList.text).not.toContain(SECRET);
      expect((ownList.body as { counts: Record<string, number> }).counts.pending).toBe(1);
      const ownPage = await httpCall(h, `/api/v1/console/jobs/${id}`, { token: ownerToken });
      expect([ownPage.status, (ownPage.body as { job: { id: string } }).job.id]).toEqual([200, id]);
      expect(ownPage.text).not.toContain(SECRET);

      const still = await rpc<pb.GetJobResponse>((cb) => owner.jobs.getJob({ jobId: id }, cb));
      expect(stateName(still.job!.state)).toBe("PENDING");

      // Controls: the owner and an operator see it (secrets masked), the owner reads its (empty) logs and cancels it.
      expect(still.job!.spec!.template!.env).toEqual({ HF_TOKEN: "***" });
      const own = await rpc<pb.ListJobsResponse>((cb) => owner.jobs.listJobs(listAll, cb));
      expect(own.jobs.map((j) => j.id)).toEqual([id]);
      expect(JSON.stringify(own)).not.toContain(SECRET);
      for (const tenant of ["", "ivictim"]) {
        const all = await rpc<pb.ListJobsResponse>((cb) => operator.jobs.listJobs({ ...listAll, tenant }, cb));
        expect(all.jobs.some((j) => j.id === id)).toBe(true);
      }
      expect(await drain(owner.jobs.streamLogs({ jobId: id, follow: false, taskId: "" }))).toEqual({
        err: undefined,
        received: [],
      });
      const cancelled = await rpc<pb.CancelJobResponse>((cb) =>
        owner.jobs.cancelJob({ jobId: id, reason: "changed my mind" }, cb),
      );
      expect([stateName(cancelled.job!.state), cancelled.job!.reason]).toEqual([
        "CANCELLED",
        "cancelled: changed my mind",
      ]);
      expect(await written(id)).toBeUndefined();
      await attempt("GetJob of another tenant's cancelled job not written yet", NF, (cb) =>
        mallory.jobs.getJob({ jobId: id }, cb),
      );

      // Once budgets take writes again the materialiser writes it cancelled: never placed, nothing reserved.
      await restore();
      const job = await waitFor(() => written(id), { what: "the job written", timeoutMs: 30_000 });
      expect([job.state, job.reserved, job.tasks.every((t) => t.agentId === "")]).toEqual(["cancelled", 0, true]);
      // The submission and its cancel intent, both applied, are gone from the intake.
      await waitFor(async () => (await intakeCount()) === 0, { what: "the intake drained" });
    } finally {
      await restore();
    }
  });

  it("prints the attack table: 0 leaked, 0 unexpected allows", () => {
    console.log(table.render("gRPC attacks (issue 7)"));
    expect(table.list().length).toBeGreaterThanOrEqual(40);
    for (const row of table.list())
      expect({ attack: row.attack, leaked: row.leaked, allowed: row.unexpectedAllows }).toEqual({
        attack: row.attack,
        leaked: 0,
        allowed: 0,
      });
    expect(table.failures()).toBe(0);
  });
});
