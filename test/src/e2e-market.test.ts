/**
 * The marketplace end to end: a real nats-server, the scheduler over real gRPC, and real agents (@capa/agent,
 * simulated GPUs) in two regions at known prices. Order book, quotes, runtime price changes (price locked at
 * placement), a job priced out of the market, budget admission under concurrency, and the running-job budget.
 */
import { AgentPriceError, setAgentPrices } from "@capa/agent";
import * as pb from "@capa/api";
import type { NatsConnection } from "@capa/bus";
import { costForGpuMillis, parseUsd } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, rpc, rpcError, spec, startHarness, submit, watch } from "./scheduler-harness.js";
import {
  cancelAndWait,
  listOffers,
  type MarketAgents,
  quote,
  startMarketAgents,
  waitForState,
} from "./scheduler-market.js";

const usd = parseUsd;
const H100 = "H100-80GB";

describe("marketplace end to end", () => {
  let h: Harness;
  let agents: MarketAgents;
  let nc: NatsConnection;

  beforeAll(async () => {
    h = await startHarness();
    agents = await startMarketAgents(h, [
      { agentId: "mkt-eu-1", region: "eu-west", h100: "2.00", h100Interruptible: "1.00" },
      { agentId: "mkt-eu-2", region: "eu-west", h100: "2.50" },
      { agentId: "mkt-us-1", region: "us-east", h100: "3.00" },
    ]);
    nc = await h.connect("market-test-client");
  });
  afterAll(async () => {
    await nc?.close();
    await agents?.stop();
    await h?.stop();
  });

  it("ListOffers aggregates by (region, model), filters by region glob and max price, and sorts", async () => {
    const all = await listOffers(h, {});
    expect(all.offers.map((o) => [o.region, o.gpuModel, o.agents, o.totalGpus, o.freeGpus])).toEqual([
      ["eu-west", H100, 2, 4, 4],
      ["us-east", H100, 1, 2, 2],
    ]);
    expect(all.offers.map((o) => [o.minMicrosPerGpuHour, o.medianMicrosPerGpuHour])).toEqual([
      [usd("2.00"), usd("2.00")], // lower median of 2.00 and 2.50: a price someone asks
      [usd("3.00"), usd("3.00")],
    ]);
    expect(all.agents).toEqual([]);
    expect((await listOffers(h, { sortBy: "-price" })).offers.map((o) => o.region)).toEqual(["us-east", "eu-west"]);
    expect((await listOffers(h, { regionGlob: "us-*" })).offers.map((o) => o.region)).toEqual(["us-east"]);
    const cheap = await listOffers(h, { regionGlob: "eu-*", maxPriceMicrosPerGpuHour: usd("2.20"), raw: true });
    expect(cheap.offers.map((o) => [o.region, o.agents, o.totalGpus])).toEqual([["eu-west", 1, 2]]);
    expect(cheap.agents.map((a) => a.agentId)).toEqual(["mkt-eu-1"]);
    const spot = await listOffers(h, { interruptible: true });
    expect(spot.offers.map((o) => [o.region, o.minMicrosPerGpuHour, o.interruptible])).toEqual([
      ["eu-west", usd("1.00"), true],
    ]);
    expect((await listOffers(h, { regionGlob: "ap-*" })).offers).toEqual([]);
  });

  it("Quote returns feasible offers, cheapest and median per region, estimated costs and start", async () => {
    const before = Date.now();
    const q = await quote(h, spec({ replicas: 2, gpusPerReplica: 1, expectedDurationSeconds: 3600 }));
    const after = Date.now();
    expect(q.feasibleOffers).toBe(3);
    expect(
      q.regions.map((r) => [r.region, r.offers, r.freeGpus, r.cheapestMicrosPerGpuHour, r.medianMicrosPerGpuHour]),
    ).toEqual([
      ["eu-west", 2, 4, usd("2.00"), usd("2.00")],
      ["us-east", 1, 2, usd("3.00"), usd("3.00")],
    ]);
    // Both replicas fit on the cheapest agent's free GPUs: 2 × $2.00/h, for one hour each.
    expect(q.estimatedHourlyMicros).toBe(usd("4.00"));
    expect(q.estimatedTotalMicros).toBe(2 * costForGpuMillis(usd("2.00"), 3_600_000));
    expect(q.estimatedStartUnixMs).toBeGreaterThanOrEqual(before);
    expect(q.estimatedStartUnixMs).toBeLessThanOrEqual(after);
    expect(q.reason).toBe("");
    expect(q.explanation?.outcome).toBe("placed");

    const capped = await quote(h, spec({ maxPriceMicrosPerGpuHour: usd("2.20") }));
    expect([capped.feasibleOffers, capped.regions.map((r) => r.region)]).toEqual([1, ["eu-west"]]);
    const priced = await quote(h, spec({ maxPriceMicrosPerGpuHour: usd("1.50") }));
    expect(priced.feasibleOffers).toBe(0);
    expect(priced.reason).toContain("cheapest is H100-80GB at $2.00/GPU-h in eu-west");
  });

  it("Quote says how the start was estimated: free-now with nothing queued ahead on an idle fleet", async () => {
    const q = await quote(h, spec({ replicas: 2, gpusPerReplica: 1, expectedDurationSeconds: 3600 }));
    expect([q.startBasis, q.queuedAhead, q.reason]).toEqual(["free-now", 0, ""]);
    expect(q.startDetail).not.toBe("");
    const priced = await quote(h, spec({ maxPriceMicrosPerGpuHour: usd("1.50") }));
    expect([priced.startBasis, priced.estimatedStartUnixMs]).toEqual(["infeasible", 0]);
  });

  it("a job whose max price is below every offer waits, its reason naming the cheapest offer", async () => {
    const { job } = await submit(h, spec({ maxPriceMicrosPerGpuHour: usd("1.50") }, ["true"]));
    const waiting = await waitFor(
      async () => {
        const j = await getJob(h, job!.id);
        return j.reason.includes("cheapest is H100-80GB at $2.00/GPU-h in eu-west") && j;
      },
      { what: "the pending reason naming the cheapest offer" },
    );
    expect(pb.jobStateToJSON(waiting.state)).toBe("JOB_STATE_PENDING");
    await cancelAndWait(h, job!.id);
  });

  it("a runtime price change re-advertises: new placements pay it, running allocations keep theirs", async () => {
    const gate = `${agents.workDir}/gate-price`;
    const long = (name: string) =>
      spec({ name, regions: ["us-east"] }, ["sh", "-c", `while [ ! -f ${gate} ]; do sleep 0.05; done`]);
    const first = (await submit(h, long("before"))).job!;
    const running = await waitForState(h, first.id, "RUNNING");
    expect(running.tasks[0]!.priceMicrosPerGpuHour).toBe(usd("3.00"));

    const now = await setAgentPrices(nc, "us-east", "mkt-us-1", "H100-80GB=3.50/1.75");
    expect(now).toEqual([{ gpuModel: H100, onDemandPerHour: usd("3.50"), interruptiblePerHour: usd("1.75") }]);
    expect(agents.handles.get("mkt-us-1")!.advert().prices).toEqual(now);
    await expect(setAgentPrices(nc, "us-east", "mkt-us-1", "H100-80GB=cheap")).rejects.toBeInstanceOf(AgentPriceError);
    await expect(setAgentPrices(nc, "us-east", "nobody", "H100-80GB=1", { timeoutMs: 500 })).rejects.toThrow(
      /did not answer/,
    );
    await waitFor(
      async () => (await listOffers(h, { regionGlob: "us-*" })).offers[0]?.minMicrosPerGpuHour === usd("3.50"),
      { what: "the scheduler saw the new advert" },
    );

    const second = (await submit(h, long("after"))).job!;
    const placed = await waitForState(h, second.id, "RUNNING");
    expect(placed.tasks[0]!.priceMicrosPerGpuHour).toBe(usd("3.50"));
    const old = await getJob(h, first.id);
    expect([old.tasks[0]!.priceMicrosPerGpuHour, old.tasks[0]!.epoch]).toEqual([usd("3.00"), running.tasks[0]!.epoch]);
    await rpc((cb) => h.jobs.cancelJob({ jobId: first.id, reason: "" }, cb));
    await rpc((cb) => h.jobs.cancelJob({ jobId: second.id, reason: "" }, cb));
    await waitForState(h, first.id, "CANCELLED");
    await waitForState(h, second.id, "CANCELLED");
  });

  it("admission reserves expected cost: concurrent submits past the monthly cap get FAILED_PRECONDITION", async () => {
    const tenant = "budget-co";
    const set = await rpc<pb.SetTenantLimitsResponse>((cb) =>
      h.billing.setTenantLimits(
        { limits: { tenant, hourlyCapMicros: 0, monthlyCapMicros: usd("10.00"), updatedAtUnixMs: 0 }, actor: "test" },
        cb,
      ),
    );
    expect(set.limits).toMatchObject({ tenant, monthlyCapMicros: usd("10.00") });
    // No A100 is offered, so the job's max price stands in for the quote: $2.00/h for one hour = $2.00 each.
    const jobSpec = spec(
      { gpuModels: ["A100-80GB"], maxPriceMicrosPerGpuHour: usd("2.00"), expectedDurationSeconds: 3600 },
      ["true"],
    );
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => submit(h, jobSpec, { tenant, requestId: `budget-${i}` })),
    );
    const admitted = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.job!] : []));
    const refused = results.flatMap((r) =>
      r.status === "rejected" ? [r.reason as { code: number; details: string }] : [],
    );
    expect([admitted.length, refused.length]).toEqual([5, 3]);
    for (const err of refused) {
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toMatch(
        /monthly budget exceeded for tenant budget-co, job \S+: requested \$2\.00, available \$0\.00 of \$10\.00/,
      );
    }
    expect(admitted.map((j) => j.reservedMicros)).toEqual(Array(5).fill(usd("2.00")));
    const limits = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
    expect([limits.reservedMicros, limits.availableMicros, limits.monthSettledMicros]).toEqual([usd("10.00"), 0, 0]);
    const again = await rpcError((cb) => h.jobs.submitJob({ requestId: "", tenant, spec: jobSpec }, cb));
    expect(again.code).toBe(status.FAILED_PRECONDITION);

    // Finishing (here: cancelling) the admitted jobs settles their reservations at what they spent: nothing.
    for (const j of admitted) await cancelAndWait(h, j.id);
    const after = await waitFor(
      async () => {
        const l = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
        return l.reservedMicros === 0 && l;
      },
      { what: "reservations released" },
    );
    expect([after.availableMicros, after.monthSettledMicros]).toEqual([usd("10.00"), 0]);

    // A refused submission left no request record behind: its request id, reused with a changed spec, is
    // admitted afresh (not ALREADY_EXISTS for a job that was never created).
    const refusedIds = results.flatMap((r, i) => (r.status === "rejected" ? [`budget-${i}`] : []));
    const changed = { ...jobSpec, expectedDurationSeconds: 1800 };
    for (const requestId of refusedIds) {
      const retried = await submit(h, changed, { tenant, requestId });
      expect(retried.deduplicated).toBe(false);
      expect(retried.job!.reservedMicros).toBe(usd("1.00"));
      await cancelAndWait(h, retried.job!.id);
    }
  });

  it("stops a running job when its spend reaches its budget, after one warning at 80 %", async () => {
    const budget = usd("0.002"); // about 2 s on one GPU at $3.50/h (us-east, after the price change above)
    // Hold placement until the watch is open, so it surely sees every event.
    await rpc((cb) => h.operator.drainAgent({ agentId: "mkt-us-1", drain: true }, cb));
    const { job } = await submit(h, spec({ regions: ["us-east"], budgetMicros: budget }, ["sh", "-c", "sleep 60"]), {
      tenant: "capped-co",
    });
    expect(job!.reservedMicros).toBe(budget); // no expected duration: the job's own budget is reserved
    const watcher = watch(h, job!.id);
    await waitFor(() => watcher.events.length > 0, { what: "the first watch event" });
    await rpc((cb) => h.operator.drainAgent({ agentId: "mkt-us-1", drain: false }, cb));
    await watcher.done;
    const messages = watcher.events.map((e) => e.message);
    expect(messages.filter((m) => m.startsWith("budget warning"))).toHaveLength(1);
    const done = await getJob(h, job!.id);
    expect(pb.jobStateToJSON(done.state)).toBe("JOB_STATE_CANCELLED");
    expect(done.reason).toMatch(/^cancelled: budget-exhausted: spent \$[\d.]+ of the job's budget \$0\.002/);
    const settled = await waitFor(
      async () => {
        const r = await rpc<pb.ListReceiptsResponse>((cb) =>
          h.billing.listReceipts(
            { tenant: "capped-co", agentId: "", jobId: job!.id, fromUnixMs: 0, toUnixMs: 0, limit: 0, pageToken: "" },
            cb,
          ),
        );
        return r.receipts.length === 1 && r.receipts[0]!;
      },
      { what: "the stopped job's receipt" },
    );
    const inv = await rpc<pb.GetInvoiceResponse>((cb) =>
      h.billing.getInvoice({ tenant: "capped-co", fromUnixMs: 0, toUnixMs: 0, jobId: job!.id }, cb),
    );
    expect(inv.lines[0]!.charges[0]!.endReason).toBe("budget-exhausted");
    expect(inv.totalMicros).toBe(settled.amountMicros);
    // Stopped with its kill grace still inside the budget, and the settled charge capped at the budget: a
    // budget-stopped job is never billed past its budget. The receipt's arithmetic holds all the same.
    expect(settled.amountMicros).toBeLessThanOrEqual(budget);
    expect(settled.amountMicros).toBe(costForGpuMillis(settled.priceMicrosPerGpuHour, settled.gpuMilliseconds));
    expect(settled.feeMicros + settled.payoutMicros).toBe(settled.amountMicros);
    expect((await getJob(h, job!.id)).spentMicros).toBe(settled.amountMicros);
  });

  it("a job admitted at rate 0 (nothing matched yet) is stopped once placement puts it over the hourly cap", async () => {
    const tenant = "hourly-co";
    await rpc((cb) =>
      h.billing.setTenantLimits(
        { limits: { tenant, hourlyCapMicros: usd("1.00"), monthlyCapMicros: 0, updatedAtUnixMs: 0 }, actor: "test" },
        cb,
      ),
    );
    // Nothing in us-east is offered at submit and the spec names no max price: admission reserves rate 0.
    await rpc((cb) => h.operator.drainAgent({ agentId: "mkt-us-1", drain: true }, cb));
    const { job } = await submit(h, spec({ regions: ["us-east"] }, ["sh", "-c", "sleep 60"]), { tenant });
    const before = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
    expect(before.hourlyCommittedMicros).toBe(0);
    await rpc((cb) => h.operator.drainAgent({ agentId: "mkt-us-1", drain: false }, cb));
    // Placed at $3.50/GPU-h: refreshing the reservation to that rate is refused, so the job is stopped.
    const done = await waitForState(h, job!.id, "CANCELLED");
    expect(done.tasks[0]!.priceMicrosPerGpuHour).toBe(usd("3.50"));
    expect(done.reason).toMatch(
      /^cancelled: budget-exhausted: hourly cap reached: hourly spending rate exceeded for tenant hourly-co, job \S+: requested \$3\.50, available \$1\.00 of \$1\.00/,
    );
    const after = await waitFor(
      async () => {
        const l = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
        return l.reservedMicros === 0 && l.hourlyCommittedMicros === 0 && l;
      },
      { what: "the stopped job's reservation settled" },
    );
    expect(after.limits?.hourlyCapMicros).toBe(usd("1.00"));
  });

  it("SetTenantLimits changes only the caps named: two concurrent partial sets of different caps both survive", async () => {
    const tenant = "partial-co";
    const set = (limits: Partial<pb.TenantLimits>, actor: string) =>
      rpc<pb.SetTenantLimitsResponse>((cb) =>
        h.billing.setTenantLimits({ limits: { tenant, updatedAtUnixMs: 0, ...limits }, actor }, cb),
      );
    const [hourly, monthly] = await Promise.all([
      set({ hourlyCapMicros: usd("10.00") }, "alice"),
      set({ monthlyCapMicros: usd("500.00") }, "bob"),
    ]);
    expect(hourly.limits?.hourlyCapMicros).toBe(usd("10.00"));
    expect(hourly.limits?.updatedBy).toBe("alice");
    expect(monthly.limits?.monthlyCapMicros).toBe(usd("500.00"));
    expect(monthly.limits?.updatedBy).toBe("bob");
    const got = await rpc<pb.GetTenantLimitsResponse>((cb) => h.billing.getTenantLimits({ tenant }, cb));
    expect(got.limits).toMatchObject({ tenant, hourlyCapMicros: usd("10.00"), monthlyCapMicros: usd("500.00") });
    expect(["alice", "bob"]).toContain(got.limits?.updatedBy);
    expect(got.limits?.updatedAtUnixMs).toBeGreaterThan(0);
    // 0 present removes that cap alone; the other keeps its value.
    const removed = await set({ hourlyCapMicros: 0 }, "carol");
    expect(removed.limits).toMatchObject({ hourlyCapMicros: 0, monthlyCapMicros: usd("500.00"), updatedBy: "carol" });
    // Naming no cap changes nothing and is refused.
    const none = await rpcError((cb) =>
      h.billing.setTenantLimits({ limits: { tenant, updatedAtUnixMs: 0 }, actor: "x" }, cb),
    );
    expect([none.code, none.details]).toEqual([status.INVALID_ARGUMENT, expect.stringContaining("limits")]);
  });
});
