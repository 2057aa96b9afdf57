/**
 * The submit fallback on a real 3-server NATS cluster (R3) and real gRPC: the home server leading the budgets
 * bucket's stream is SIGKILLed, so every submission's admission step (a CAS write to KV_capa_budgets) gets no
 * answer until that stream elects a new leader (4–9 s in nats-server 2.9). The submissions are acknowledged from
 * an intake stream instead (the leader keeper spread the two intake leaders first, so one is alive), GetJob and
 * WatchJob answer them meanwhile, and the leader's materialiser later writes each job exactly once under the
 * acknowledged id — one reservation each, never two; a tenant over its cap gets a FAILED job with the refusal as
 * its reason (it was acknowledged, so it is never dropped). The other tenant RPCs answer the acknowledged jobs too:
 * ListJobs lists them (paged, none twice), StreamLogs answers as for a job without logs yet (and a follow ends
 * once the job is final), CancelJob is accepted and the job ends CANCELLED. Whether each answer came before the
 * job was written depends on the election's length: the assertions hold either way, and what happened is printed
 * (test/src/security-grpc.test.ts holds jobs in the intake for as long as it needs). No timed assertions.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { BUCKETS, decode, INTAKE_STREAMS, REQUEST_REGISTERS } from "@capa/bus";
import { BUDGET_BUCKET, budgetKey } from "@capa/ledger";
import { decodeTenantBudget, type TenantBudget } from "@capa/market";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { type SuperclusterHandle, startSupercluster, waitFor } from "@capa/testkit";
import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminTokenOf, type Clients, clientsFor, rpc, rpcError, silent, spec } from "./scheduler-harness.js";

const RICH = "rich";
const POOR = "poor";
/** Priced by its max price (no agent offers anything): $2 reserved per job. */
const PRICED = () => spec({ maxPriceMicrosPerGpuHour: 2_000_000, expectedDurationSeconds: 3_600 });

describe("SubmitJob while a home NATS server is down: acknowledged from the intake, materialised once", () => {
  let dir: string;
  let sc: SuperclusterHandle;
  let scheduler: SchedulerHandle;
  let c: Clients;
  let nc: NatsConnection;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "capa-intake-test-"));
    sc = await startSupercluster({ regions: ["eu-west"], dir: join(dir, "nats") });
    // One seed URL (the client still learns the others): the server killed below is never the scheduler's own
    // connection, whose in-flight request-record creates would fail with it (no job id yet to fall back under).
    scheduler = await startScheduler({
      natsUrl: sc.servers[0]!.url,
      grpcAddress: "127.0.0.1:0",
      dataDir: join(dir, "scheduler"),
      // Longer than any stream election: the one replica keeps its lease while KV_capa_leader re-elects.
      leaseTtlMs: 60_000,
      metricsPort: 0,
      logger: silent,
    });
    c = clientsFor(scheduler.grpcAddress, adminTokenOf(scheduler));
    nc = await connect({ servers: sc.homeUrls });
    await waitFor(() => scheduler.isLeader(), { what: "the scheduler leading", timeoutMs: 30_000 });
  }, 120_000);

  afterAll(async () => {
    c?.close();
    await nc?.close();
    await scheduler?.stop();
    await sc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const submit = (tenant: string, requestId: string) =>
    rpc<pb.SubmitJobResponse>((cb) => c.jobs.submitJob({ requestId, tenant, spec: PRICED() }, cb));

  const counter = async (name: string) => {
    const text = await (await fetch(`http://${scheduler.metricsAddress}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(name) && !l.startsWith("#"))
      .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
  };

  it("acks within the stall budget from the intake, answers reads meanwhile, and materialises each job once", async () => {
    // Before the fault a tenant over its cap is refused synchronously, as always.
    await rpc((cb) =>
      c.billing.setTenantLimits(
        { limits: { tenant: POOR, monthlyCapMicros: 1_000, updatedAtUnixMs: 0 }, actor: "t" },
        cb,
      ),
    );
    const before = await rpcError((cb) => c.jobs.submitJob({ requestId: "p-0", tenant: POOR, spec: PRICED() }, cb));
    expect(before.code).toBe(status.FAILED_PRECONDITION);
    await submit(RICH, "warm-up");

    // The keeper leaves the two intake streams on different leaders, so one survives any one server.
    const jsm = await jetstreamManager(nc);
    const leaderOf = async (stream: string) => (await jsm.streams.info(stream)).cluster?.leader;
    const intakeLeaders = await waitFor(
      async () => {
        const leaders = await Promise.all(INTAKE_STREAMS.map(leaderOf));
        return leaders[0] && leaders[1] && leaders[0] !== leaders[1] ? leaders : undefined;
      },
      { what: "the intake leaders on two servers", timeoutMs: 60_000, intervalMs: 250 },
    );
    const budgets = `KV_${BUDGET_BUCKET}`;
    const own = sc.servers[0]!.node.name;
    const stepDownWhileLedBy = (stream: string, server: () => string) =>
      waitFor(
        async () => {
          if ((await leaderOf(stream)) !== server()) return true;
          await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2_000 }).catch(() => {});
          return false;
        },
        { what: `${stream} led by another server than ${server()}`, timeoutMs: 60_000, intervalMs: 1_000 },
      );
    await stepDownWhileLedBy(budgets, () => own);
    const victim = (await leaderOf(budgets))!;
    // The keeper also spreads the three request registers' leaders over the three servers, so the victim leads one
    // of them: the submissions' request ids (all of them carry one) are decided by the other two, without waiting
    // for its election. Before the quorum such a submission waited for that election, or was answered UNAVAILABLE.
    const registerStreams = REQUEST_REGISTERS.map((b) => `KV_${b}`);
    const registerLeaders = await waitFor(
      async () => {
        const leaders = await Promise.all(registerStreams.map(leaderOf));
        return leaders.every(Boolean) && new Set(leaders).size === leaders.length ? leaders : undefined;
      },
      { what: "the request registers' leaders on three servers", timeoutMs: 90_000, intervalMs: 500 },
    );
    const victimsRegister = registerStreams[registerLeaders.indexOf(victim)]!;
    expect(victimsRegister).toBeDefined();
    console.log(
      `intake leaders ${intakeLeaders.join(", ")}; killing ${victim} (leads KV_capa_budgets and ${victimsRegister})`,
    );
    const fallbacksBefore = await counter("capa_intake_submissions_total");
    const decidedByTwoBefore = await counter('capa_request_claims_total{outcome="claimed",registers_failed="1"');
    await sc.server(victim).kill("SIGKILL");
    const killedAt = Date.now();

    // UNAVAILABLE is retried, as a client does. It was seen when the scheduler's own NATS connection was to the
    // killed server (its request records' creates in flight failed with it: 1 of 5 runs on 4ed9521), which the
    // setup now rules out; a retry after the election takes the normal path, where the poor tenant's submission is
    // refused at once (FAILED_PRECONDITION) instead of acknowledged, as one gate run saw.
    let retried = 0;
    const timed = async (tenant: string, requestId: string) => {
      const t = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await submit(tenant, requestId);
          return { requestId, tenant, job: r.job!, ms: Date.now() - t };
        } catch (err) {
          if ((err as { code?: number }).code !== status.UNAVAILABLE || attempt >= 40) throw err;
          retried++;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    const acks = await Promise.all([
      timed(RICH, "r-1"),
      timed(RICH, "r-2"),
      timed(RICH, "r-3"),
      timed(RICH, "dup"),
      timed(RICH, "dup"),
      timed(POOR, "p-1"),
      timed(RICH, "c-1"),
    ]);
    console.log(
      `acked ${acks.length} submissions ${acks.map((a) => `${a.requestId} ${a.ms} ms`).join(", ")} after the kill` +
        ` (${retried} UNAVAILABLE answers retried)`,
    );
    for (const a of acks) expect(stateOf(a.job)).toBe("JOB_STATE_PENDING");
    // Never two job ids for one request id.
    const dups = acks.filter((a) => a.requestId === "dup");
    expect(dups[0]!.job.id).toBe(dups[1]!.job.id);
    // Taken by the intake (the normal path had no live budgets leader), not by the normal path.
    expect(await counter("capa_intake_submissions_total")).toBeGreaterThan(fallbacksBefore);
    // Their request ids were decided by the two other registers: the victim's answered only store errors, and the
    // claim was not held for it (a claim that waited would have seen it answer once it had elected).
    expect(await counter('capa_request_claims_total{outcome="claimed",registers_failed="1"')).toBeGreaterThan(
      decidedByTwoBefore,
    );

    // CancelJob at once (the job is most likely still in the intake: the election takes 4-9 s), and a follow of the
    // poor tenant's job, which ends once that job is written FAILED (StreamLogs never answers NOT_FOUND).
    const target = acks.find((a) => a.requestId === "c-1")!.job.id;
    const poorId = acks.find((a) => a.tenant === POOR)!.job.id;
    const followed = logsOf(c, poorId, true);
    const cancelsBefore = await counter("capa_intake_cancels_total");
    const cancelled = await waitFor(
      () =>
        rpc<pb.CancelJobResponse>((cb) => c.jobs.cancelJob({ jobId: target, reason: "not needed" }, cb)).catch(
          (err: { code?: number }) => {
            if (err.code !== status.UNAVAILABLE) throw err; // the store is still electing: retry
            return undefined;
          },
        ),
      { what: "the cancel accepted", timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(stateOf(cancelled.job!)).toBe("JOB_STATE_CANCELLED");
    const viaIntake = (await counter("capa_intake_cancels_total")) > cancelsBefore;
    console.log(`cancel of ${target} ${viaIntake ? "written to the intake (job not written yet)" : "on the record"}`);

    // Reads answer the acknowledged jobs at once, before or after materialisation, never NOT_FOUND.
    for (const a of acks) {
      const got = await rpc<pb.GetJobResponse>((cb) => c.jobs.getJob({ jobId: a.job.id }, cb));
      expect(got.job!.id).toBe(a.job.id);
    }
    const first = await firstWatchEvent(c, acks[0]!.job.id);
    expect(first.jobId).toBe(acks[0]!.job.id);
    // ListJobs lists every acknowledged job of the tenant, written or not; paged one by one, none twice.
    const richIds = [...new Set(acks.filter((a) => a.tenant === RICH).map((a) => a.job.id))];
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      c.jobs.listJobs({ tenant: RICH, states: [], limit: 0, pageToken: "" }, cb),
    );
    expect(listed.jobs.map((j) => j.id)).toEqual(expect.arrayContaining(richIds));
    const paged: string[] = [];
    for (let pageToken = "", pages = 0; pages === 0 || pageToken !== ""; pages++) {
      const page = await rpc<pb.ListJobsResponse>((cb) =>
        c.jobs.listJobs({ tenant: RICH, states: [], limit: 1, pageToken }, cb),
      );
      paged.push(...page.jobs.map((j) => j.id));
      pageToken = page.nextPageToken;
    }
    expect(new Set(paged).size).toBe(paged.length);
    expect(paged).toEqual(expect.arrayContaining(richIds));
    const cancelledListed = await rpc<pb.ListJobsResponse>((cb) =>
      c.jobs.listJobs({ tenant: RICH, states: [pb.JobState.JOB_STATE_CANCELLED], limit: 0, pageToken: "" }, cb),
    );
    expect(cancelledListed.jobs.map((j) => j.id)).toEqual([target]);

    // StreamLogs: no logs yet (never NOT_FOUND).
    expect(await logsOf(c, acks[0]!.job.id, false)).toEqual([]);

    // The materialiser writes every job once the budgets stream has a leader again.
    // Read through the stream leader: a direct get may be answered by a replica that lags behind.
    const kv = await new Kvm(nc).open(BUCKETS.jobs, { allow_direct: false });
    const jobs = await waitFor(
      async () => {
        const out = new Map<string, ReturnType<typeof decode.job>>();
        for (const a of acks) {
          const e = await kv.get(a.job.id).catch(() => null);
          if (!e || e.operation !== "PUT") return undefined;
          out.set(a.job.id, decode.job(e.value));
        }
        return out;
      },
      { what: "every acknowledged job materialised", timeoutMs: 90_000, intervalMs: 250 },
    );
    console.log(`all materialised ${((Date.now() - killedAt) / 1000).toFixed(2)} s after the kill`);

    // Exactly one job per request id in the whole bucket (a listing is a consumer: retried while the store is busy).
    const byRequest = await waitFor(
      async () => {
        const out = new Map<string, string[]>();
        for await (const key of await kv.keys()) {
          if (key.startsWith("explain.")) continue;
          const e = await kv.get(key);
          if (!e || e.operation !== "PUT") continue;
          const job = decode.job(e.value);
          if (job.tenant !== RICH && job.tenant !== POOR) continue;
          const k = `${job.tenant}/${job.requestId}`;
          out.set(k, [...(out.get(k) ?? []), job.id]);
        }
        return out;
      },
      { what: "a listing of the jobs bucket", timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const a of acks) expect(byRequest.get(`${a.tenant}/${a.requestId}`)).toEqual([a.job.id]);

    // The cancelled job ends CANCELLED (written so, never placed, when its cancel came first); the follow ended.
    await waitFor(
      async () => {
        const e = await kv.get(target);
        return e && e.operation === "PUT" && decode.job(e.value).state === "cancelled";
      },
      { what: "the cancelled job CANCELLED in the store", timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(await followed).toEqual([]);
    // Nothing reserved: written cancelled by the materialiser; reserved: written pending, then its record cancelled.
    const { reserved } = jobs.get(target)!;
    console.log(
      `cancelled job reserved ${reserved}: ${reserved === 0 ? "written cancelled, never placed" : "written, then cancelled"}`,
    );

    // Rich jobs admitted, each holding one reservation of its own amount; nothing reserved twice.
    const budgetKv = await new Kvm(nc).open(BUDGET_BUCKET, { allow_direct: false });
    const budgetOf = async (tenant: string): Promise<TenantBudget["reservations"]> => {
      const e = await budgetKv.get(`t.${budgetKey(tenant)}`);
      return e && e.operation === "PUT" ? decodeTenantBudget(e.value).reservations : [];
    };
    const rich = { reservations: await budgetOf(RICH) };
    const richAcked = richIds.filter((id) => id !== target);
    for (const id of richAcked) {
      const job = jobs.get(id)!;
      expect(job.state).toBe("pending");
      const held = rich.reservations.filter((r) => r.jobId === id);
      expect(held.map((r) => r.amount)).toEqual([job.reserved]);
      expect(job.reserved).toBeGreaterThan(0);
    }
    // The poor tenant's acknowledged job is final with the refusal as its reason, and reserves nothing.
    const poorJob = jobs.get(acks.find((a) => a.tenant === POOR)!.job.id)!;
    expect(poorJob.state).toBe("failed");
    expect(poorJob.reason).toMatch(/not admitted after the submission was accepted/);
    expect(await budgetOf(POOR)).toEqual([]);
    const got = await rpc<pb.GetJobResponse>((cb) => c.jobs.getJob({ jobId: poorJob.id }, cb));
    expect(stateOf(got.job!)).toBe("JOB_STATE_FAILED");

    // Every intake message is gone once its job exists.
    await waitFor(
      async () => {
        const counts = await Promise.all(INTAKE_STREAMS.map(async (s) => (await jsm.streams.info(s)).state.messages));
        return counts.every((n) => n === 0);
      },
      { what: "the intake streams empty", timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(await counter("capa_intake_materialised_total")).toBeGreaterThan(0);
    await sc.server(victim).start();
  }, 240_000);
});

function stateOf(job: pb.Job): string {
  return pb.jobStateToJSON(job.state);
}

/** StreamLogs' lines, retried while it answers UNAVAILABLE (the log stream may have been led by the killed server). */
async function logsOf(c: Clients, jobId: string, follow: boolean): Promise<string[]> {
  return waitFor(
    () =>
      new Promise<string[] | undefined>((resolve, reject) => {
        const lines: string[] = [];
        const stream = c.jobs.streamLogs({ jobId, taskId: "", follow });
        stream.on("data", (l: pb.LogLine) => lines.push(Buffer.from(l.data).toString()));
        stream.on("end", () => resolve(lines));
        stream.on("error", (err: Error & { code?: number }) =>
          err.code === status.UNAVAILABLE ? resolve(undefined) : reject(err),
        );
      }),
    { what: `StreamLogs of ${jobId} answered`, timeoutMs: 90_000, intervalMs: 250 },
  );
}

function firstWatchEvent(c: Clients, jobId: string): Promise<pb.JobEvent> {
  return new Promise((resolve, reject) => {
    const stream = c.jobs.watchJob({ jobId });
    stream.once("data", (e: pb.JobEvent) => {
      resolve(e);
      stream.cancel();
    });
    stream.once("error", (err: Error & { code?: number }) => {
      if (err.code !== status.CANCELLED) reject(err);
    });
  });
}
