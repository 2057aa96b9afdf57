/**
 * The submit fallback on a real 3-server NATS cluster (R3) and real gRPC: the home server leading the budgets
 * bucket's stream is SIGKILLed, so every submission's admission step (a CAS write to KV_capa_budgets) gets no
 * answer until that stream elects a new leader (4–9 s in nats-server 2.9). The submissions are acknowledged from
 * an intake stream instead (the leader keeper spread the two intake leaders first, so one is alive), GetJob and
 * WatchJob answer them meanwhile, and the leader's materialiser later writes each job exactly once under the
 * acknowledged id — one reservation each, never two; a tenant over its cap gets a FAILED job with the refusal as
 * its reason (it was acknowledged, so it is never dropped). No timed assertions: the times are printed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { BUCKETS, decode, INTAKE_STREAMS } from "@capa/bus";
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
    scheduler = await startScheduler({
      natsUrl: sc.homeUrls.join(","),
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
    const victim = (await leaderOf(`KV_${BUDGET_BUCKET}`))!;
    console.log(`intake leaders ${intakeLeaders.join(", ")}; killing ${victim} (leads KV_capa_budgets)`);
    const fallbacksBefore = await counter("capa_intake_submissions_total");
    await sc.server(victim).kill("SIGKILL");
    const killedAt = Date.now();

    const timed = async (tenant: string, requestId: string) => {
      const t = Date.now();
      const r = await submit(tenant, requestId);
      return { requestId, tenant, job: r.job!, ms: Date.now() - t };
    };
    const acks = await Promise.all([
      timed(RICH, "r-1"),
      timed(RICH, "r-2"),
      timed(RICH, "r-3"),
      timed(RICH, "dup"),
      timed(RICH, "dup"),
      timed(POOR, "p-1"),
    ]);
    console.log(
      `acked ${acks.length} submissions ${acks.map((a) => `${a.requestId} ${a.ms} ms`).join(", ")} after the kill`,
    );
    for (const a of acks) expect(stateOf(a.job)).toBe("JOB_STATE_PENDING");
    // Never two job ids for one request id.
    const dups = acks.filter((a) => a.requestId === "dup");
    expect(dups[0]!.job.id).toBe(dups[1]!.job.id);
    // Taken by the intake (the normal path had no live budgets leader), not by the normal path.
    expect(await counter("capa_intake_submissions_total")).toBeGreaterThan(fallbacksBefore);

    // Reads answer the acknowledged jobs at once, before or after materialisation, never NOT_FOUND.
    for (const a of acks) {
      const got = await rpc<pb.GetJobResponse>((cb) => c.jobs.getJob({ jobId: a.job.id }, cb));
      expect(got.job!.id).toBe(a.job.id);
    }
    const first = await firstWatchEvent(c, acks[0]!.job.id);
    expect(first.jobId).toBe(acks[0]!.job.id);

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

    // Rich jobs admitted, each holding one reservation of its own amount; nothing reserved twice.
    const budgetKv = await new Kvm(nc).open(BUDGET_BUCKET, { allow_direct: false });
    const budgetOf = async (tenant: string): Promise<TenantBudget["reservations"]> => {
      const e = await budgetKv.get(`t.${budgetKey(tenant)}`);
      return e && e.operation === "PUT" ? decodeTenantBudget(e.value).reservations : [];
    };
    const rich = { reservations: await budgetOf(RICH) };
    const richAcked = [...new Set(acks.filter((a) => a.tenant === RICH).map((a) => a.job.id))];
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
