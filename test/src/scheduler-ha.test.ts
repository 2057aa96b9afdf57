/**
 * Scheduler HA on the server side (scheduler/src/ha): two replicas on one NATS. A follower serves reads itself
 * and forwards every write to the leader named in the lease, which serves and audits it once; the leader's own
 * errors come back unchanged. When the write cannot reach a leader (the lease names one that does not answer,
 * or the call was already forwarded once) the follower answers UNAVAILABLE naming the leader and its address,
 * in words and in the `capa-leader-address` trailer, which the CLI's address list follows.
 */
import * as pb from "@capa/api";
import { jsonCodec, TypedKv } from "@capa/bus";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { waitFor } from "@capa/testkit";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Clients,
  clientsFor,
  type Harness,
  rpc,
  rpcError,
  silent,
  spec,
  startHarness,
} from "./scheduler-harness.js";

interface Lease {
  holder: string;
  term: number;
  expiresAtMs: number;
  acquiredAtMs: number;
  address?: string;
}

describe("scheduler HA: followers forward writes to the leader or name it", () => {
  let h: Harness;
  let second: SchedulerHandle;
  let lease: TypedKv<Lease>;
  const clients = new Map<SchedulerHandle, Clients>();

  /**
   * Which replica leads right now (a loaded machine can move the lease between tests), with clients of the
   * follower. Waits until exactly one replica holds the lease.
   */
  async function roles(): Promise<{
    leader: SchedulerHandle;
    follower: SchedulerHandle;
    viaFollower: Clients;
    viaLeader: Clients;
  }> {
    const [leader, follower] = await waitFor(
      () => {
        const leaders = [h.scheduler, second].filter((s) => s.isLeader());
        return leaders.length === 1 && (leaders[0] === h.scheduler ? [h.scheduler, second] : [second, h.scheduler]);
      },
      { what: "exactly one leader" },
    );
    const of = (s: SchedulerHandle) => {
      const c = clients.get(s) ?? clientsFor(s.grpcAddress, h.adminToken);
      clients.set(s, c);
      return c;
    };
    return { leader: leader!, follower: follower!, viaFollower: of(follower!), viaLeader: of(leader!) };
  }

  beforeAll(async () => {
    h = await startHarness({ leaseTtlMs: 8_000 });
    // The first scheduler leads before the second starts (under load the second could otherwise take the lease).
    await waitFor(() => h.scheduler.isLeader(), { what: "the harness scheduler to lead", timeoutMs: 30_000 });
    second = await startScheduler({
      natsUrl: h.nats.url,
      natsNkeySeed: h.schedulerSeed,
      grpcAddress: "127.0.0.1:0",
      dataDir: h.dataDir,
      leaseTtlMs: 8_000,
      logger: silent,
    });
    lease = new TypedKv(h.store.leader, jsonCodec<Lease>());
  });
  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await second?.stop();
    await h?.stop();
  });

  it("writes the leader's address into the lease", async () => {
    const { leader } = await roles();
    const current = await lease.get("scheduler");
    expect(current?.value).toMatchObject({ holder: leader.schedulerId, address: leader.grpcAddress });
  });

  it("forwards a submit to the leader, which audits it once; the follower serves the read", async () => {
    const { viaFollower, viaLeader } = await roles();
    const { job, deduplicated } = await rpc<pb.SubmitJobResponse>((cb) =>
      viaFollower.jobs.submitJob({ requestId: "ha-fwd-1", tenant: "acme", spec: spec({}, ["true"]) }, cb),
    );
    expect(deduplicated).toBe(false);
    // The same request id through the leader is the same job (one writer, one request record).
    const again = await rpc<pb.SubmitJobResponse>((cb) =>
      viaLeader.jobs.submitJob({ requestId: "ha-fwd-1", tenant: "acme", spec: spec({}, ["true"]) }, cb),
    );
    expect(again).toMatchObject({ deduplicated: true, job: { id: job!.id } });
    const read = await waitFor(
      async () => {
        try {
          return await rpc<pb.GetJobResponse>((cb) => viaFollower.jobs.getJob({ jobId: job!.id }, cb));
        } catch (err) {
          if ((err as { code?: number }).code === status.NOT_FOUND) return undefined; // KV watch not there yet
          throw err;
        }
      },
      { what: "the follower reads the job" },
    );
    expect(read.job?.id).toBe(job!.id);
    const audited = await waitFor(
      async () => {
        const r = await rpc<pb.ListAuditResponse>((cb) =>
          h.audit.listAudit(pb.ListAuditRequest.fromPartial({ method: "JobService/SubmitJob", limit: 100 }), cb),
        );
        const mine = r.entries.filter((e) => e.target === `job ${job!.id}`);
        return mine.length >= 2 && mine;
      },
      { what: "two audit entries (direct and forwarded submit)" },
    );
    // One entry per call, not one per hop: the forwarded call is audited by the leader only.
    expect(audited).toHaveLength(2);
  });

  it("passes the leader's own errors through unchanged (INVALID_ARGUMENT with its field)", async () => {
    const { viaFollower } = await roles();
    const err = await rpcError((cb) =>
      viaFollower.jobs.submitJob({ requestId: "ha-bad", tenant: "acme", spec: spec({ gpusPerReplica: -1 }) }, cb),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/gpus_per_replica/);
  });

  it("refuses a call already forwarded once, naming the leader (no second hop)", async () => {
    const { leader, viaFollower } = await roles();
    const md = new Metadata();
    md.set("capa-forwarded-by", "someone");
    const err = await rpcError<pb.CancelJobResponse>((cb) =>
      viaFollower.jobs.cancelJob({ jobId: "nope", reason: "x" }, md, cb),
    );
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toContain(`the leader is ${leader.schedulerId} at ${leader.grpcAddress}`);
    expect(err.metadata.get("capa-leader-address")).toEqual([leader.grpcAddress]);
  });

  it("answers UNAVAILABLE naming the leader when the leader does not answer; reads still work", async () => {
    const { viaFollower } = await roles();
    // A lease naming a holder nobody runs: both replicas follow it until it expires.
    const current = await lease.get("scheduler");
    const ghost = "127.0.0.1:9"; // discard port: nothing listens there
    await lease.write(
      "scheduler",
      {
        holder: "ghost",
        term: (current?.value.term ?? 0) + 1,
        expiresAtMs: Date.now() + 15_000,
        acquiredAtMs: Date.now(),
        address: ghost,
      },
      current?.revision ?? 0,
    );
    await waitFor(() => !h.scheduler.isLeader() && !second.isLeader(), {
      what: "the leader steps down for the newer lease",
    });
    const err = await waitFor(
      async () => {
        const e = await rpcError((cb) =>
          viaFollower.jobs.submitJob({ requestId: "ha-ghost", tenant: "acme", spec: spec({}, ["true"]) }, cb),
        );
        // Until the follower re-reads the lease it forwards to the old leader, which refuses the second hop.
        return e.details.includes("did not answer") ? e : undefined;
      },
      { what: "the follower tries the ghost leader itself" },
    );
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(
      /the leader ghost did not answer JobService\/SubmitJob .*the leader is ghost at 127\.0\.0\.1:9; retry there/,
    );
    expect(err.metadata.get("capa-leader-address")).toEqual([ghost]);
    // Nothing was written: the request id is free, and reads are served meanwhile.
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      viaFollower.jobs.listJobs(pb.ListJobsRequest.fromPartial({ tenant: "acme", limit: 100 }), cb),
    );
    expect(listed.jobs.length).toBeGreaterThanOrEqual(1);
    // Once the ghost's lease expires a real replica takes over and the same submit goes through.
    const { job } = await waitFor(
      async () => {
        try {
          return await rpc<pb.SubmitJobResponse>((cb) =>
            viaFollower.jobs.submitJob({ requestId: "ha-ghost", tenant: "acme", spec: spec({}, ["true"]) }, cb),
          );
        } catch (e) {
          if ((e as { code?: number }).code === status.UNAVAILABLE) return undefined;
          throw e;
        }
      },
      { timeoutMs: 60_000, intervalMs: 250, what: "a submit accepted after the takeover" },
    );
    expect(job?.id).toBeTruthy();
    await waitFor(() => h.scheduler.isLeader() || second.isLeader(), { what: "a leader again" });
  }, 90_000);
});
