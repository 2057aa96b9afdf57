/**
 * Retention on a real nats-server and scheduler: a final job older than the retention leaves KV (job,
 * explanation, request record) and memory, while a running job of the same age and its allocation are never
 * touched; its request id is free again. A short retention and sweep interval stand in for the 30-day default.
 */
import * as pb from "@capa/api";
import { requestKey as requestKeyOf } from "@capa/scheduler";
import { waitFor } from "@capa/testkit";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, rpc, rpcError, spec, startHarness, stateName, submit } from "./scheduler-harness.js";
import { type MarketAgents, startMarketAgents } from "./scheduler-market.js";

describe("retention of final jobs", () => {
  let h: Harness;
  let agents: MarketAgents;
  beforeAll(async () => {
    h = await startHarness({ retentionMs: 2_000, retentionSweepIntervalMs: 300 });
    agents = await startMarketAgents(h, [{ agentId: "ret-a1", region: "eu-west", h100: "2.00", gpus: 4 }]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("removes final jobs after the retention and never touches live ones", async () => {
    const live = await submit(h, spec({ gpusPerReplica: 1 }, ["sleep", "60"]), { tenant: "ret", requestId: "live-1" });
    const done = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { tenant: "ret", requestId: "done-1" });
    const doneId = done.job!.id;
    const liveId = live.job!.id;
    await waitFor(async () => stateName((await getJob(h, doneId)).state) === "SUCCEEDED", { what: "done" });
    await waitFor(async () => stateName((await getJob(h, liveId)).state) === "RUNNING", { what: "live running" });
    expect(await h.store.jobs.get(`explain.${doneId}`)).toBeTruthy();

    // Gone from KV and from the scheduler's answers once the retention has passed.
    const err = await waitFor(
      async () => {
        const e = await rpcError((cb) => h.jobs.getJob({ jobId: doneId }, cb)).catch(() => undefined);
        return e?.code === status.NOT_FOUND ? e : undefined;
      },
      { what: "the final job removed", timeoutMs: 30_000 },
    );
    expect(err.details).toContain(doneId);
    const stored = await h.store.jobs.get(doneId);
    expect(!stored || stored.operation !== "PUT").toBe(true);
    const explain = await h.store.jobs.get(`explain.${doneId}`);
    expect(!explain || explain.operation !== "PUT").toBe(true);
    const record = await h.store.requests.get(requestKeyOf("ret", "done-1"));
    expect(!record || record.operation !== "PUT").toBe(true);
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs(pb.ListJobsRequest.fromPartial({ tenant: "ret" }), cb),
    );
    expect(listed.jobs.map((j) => j.id)).toEqual([liveId]);

    // The running job, older than the retention too, is untouched and still holds its GPU.
    const running = await getJob(h, liveId);
    expect(stateName(running.state)).toBe("RUNNING");
    const allocs = await h.store.allocs.get("ret-a1");
    expect(allocs?.operation).toBe("PUT");
    expect((await h.store.requests.get(requestKeyOf("ret", "live-1")))?.operation).toBe("PUT");

    // The expired request id is free: the same id makes a new job.
    const again = await submit(h, spec({ gpusPerReplica: 1 }, ["true"]), { tenant: "ret", requestId: "done-1" });
    expect(again.deduplicated).toBe(false);
    expect(again.job!.id).not.toBe(doneId);
    await rpc((cb) => h.jobs.cancelJob({ jobId: liveId, reason: "" }, cb));
  });
});
