import { connectBus, TypedKv } from "@capa/bus";
import { parseUsd } from "@capa/domain";
import { BudgetStore, budgetKey, openBudgetStore } from "@capa/ledger";
import {
  BudgetExceededError,
  decodeTenantBudget,
  encodeTenantBudget,
  HourlyRateExceededError,
  MonthlyBudgetExceededError,
} from "@capa/market";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const NOW = Date.UTC(2025, 8, 10);

describe("tenant budgets in JetStream KV with CAS", () => {
  let server: NatsServerHandle;
  let connections: NatsConnection[];
  let stores: BudgetStore[];

  beforeAll(async () => {
    server = await startNatsServer();
    // three "schedulers", each with its own connection, admitting for the same tenants
    connections = await Promise.all(
      [1, 2, 3].map((i) => connectBus({ servers: server.url, name: `budget-test-${i}` })),
    );
    stores = await Promise.all(connections.map((nc) => openBudgetStore(nc)));
  });
  afterAll(async () => {
    await Promise.all((connections ?? []).map((nc) => nc.close()));
    await server?.stop();
  });

  it("refuses the excess of concurrent submissions whose expected costs exceed the balance", async () => {
    await stores[0]!.setLimits("acme", { monthlyCap: parseUsd("100"), hourlyCap: 0 }, NOW);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        stores[i % stores.length]!.reserve("acme", `job-${i}`, { total: parseUsd("30"), hourly: 0 }, NOW),
      ),
    );
    const accepted = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
    expect(accepted).toHaveLength(3);
    expect(refused).toHaveLength(7);
    for (const err of refused) {
      expect(err).toBeInstanceOf(MonthlyBudgetExceededError);
      expect(err).toMatchObject({ code: "FAILED_PRECONDITION", requested: parseUsd("30"), available: parseUsd("10") });
    }
    expect(await stores[1]!.summary("acme", NOW)).toMatchObject({
      reserved: parseUsd("90"),
      available: parseUsd("10"),
    });
  });

  it("settles and releases durably, so a reservation frees room for the next job", async () => {
    await stores[0]!.setLimits("initech", { monthlyCap: parseUsd("50"), hourlyCap: parseUsd("5") }, NOW);
    await stores[0]!.reserve("initech", "a", { total: parseUsd("40"), hourly: parseUsd("4") }, NOW);
    await expect(
      stores[1]!.reserve("initech", "b", { total: parseUsd("5"), hourly: parseUsd("2") }, NOW),
    ).rejects.toBeInstanceOf(HourlyRateExceededError);
    await stores[2]!.settle("initech", "a", parseUsd("12.5"), NOW);
    await stores[2]!.settle("initech", "a", parseUsd("12.5"), NOW); // a replay: no second charge
    await stores[1]!.reserve("initech", "b", { total: parseUsd("37.5"), hourly: parseUsd("2") }, NOW);
    await expect(stores[0]!.reserve("initech", "c", { total: 1, hourly: 0 }, NOW)).rejects.toBeInstanceOf(
      BudgetExceededError,
    );
    await stores[0]!.release("initech", "b", NOW);
    expect(await stores[2]!.summary("initech", NOW)).toMatchObject({
      settled: parseUsd("12.5"),
      reserved: 0,
      available: parseUsd("37.5"),
      hourlyCommitted: 0,
    });
  });

  it("keeps tenants whose names are not KV keys apart", async () => {
    expect(budgetKey("acme")).toBe("acme");
    expect(budgetKey("bob@example.com")).not.toBe(budgetKey("bob@example"));
    await stores[0]!.setLimits("bob@example.com", { monthlyCap: 7, hourlyCap: 0 }, NOW);
    expect((await stores[1]!.get("bob@example.com", NOW)).limits.monthlyCap).toBe(7);
    expect((await stores[1]!.get("bob@example", NOW)).limits.monthlyCap).toBe(0);
  });

  it("keeps the settler's per-job index and settled markers next to tenants, without disturbing them", async () => {
    const [a, b] = [stores[0]!, stores[1]!];
    await a.noteAllocation("hooli", "job-1", { taskId: "job-1-0", epoch: 4 });
    expect((await b.jobAllocations("job-1"))?.allocs).toEqual({
      "job-1-0:4": { taskId: "job-1-0", epoch: 4, charge: null },
    });
    await b.noteAllocation("hooli", "job-1", { taskId: "job-1-0", epoch: 4 }, 1234);
    await a.noteAllocation("hooli", "job-1", { taskId: "job-1-0", epoch: 4 }); // a late "about to settle": kept
    await a.noteAllocation("hooli", "job-1", { taskId: "job-1-0", epoch: 9 }, 66);
    expect((await b.jobAllocations("job-1"))?.allocs).toEqual({
      "job-1-0:4": { taskId: "job-1-0", epoch: 4, charge: 1234 },
      "job-1-0:9": { taskId: "job-1-0", epoch: 9, charge: 66 },
    });
    expect(await a.jobAllocations("job-2")).toBeUndefined();

    await a.markJobSettled({ jobId: "job-1", tenant: "hooli", total: 1300, settledAtMs: NOW });
    await b.markJobSettled({ jobId: "job-1", tenant: "hooli", total: 1, settledAtMs: NOW + 1 }); // first wins
    expect(await b.settledMarker("job-1")).toEqual({ jobId: "job-1", tenant: "hooli", total: 1300, settledAtMs: NOW });
    expect([...(await b.settledJobIds())]).toEqual(["job-1"]);
    // Tenant documents are listed apart from the job keys (names decoded back).
    expect((await a.tenants()).sort()).toEqual(["acme", "bob@example.com", "initech"]);
    await a.deleteJobAllocations("job-1");
    expect(await b.jobAllocations("job-1")).toBeUndefined();
    expect((await b.settledMarker("job-1"))?.total).toBe(1300); // the marker stays
  });

  it("lists tenants without reading a job key, however many jobs were settled; settled jobs keep no allocs doc", async () => {
    // The same bucket, with every key a listing yields counted.
    const real = (stores[0] as unknown as { kv: TypedKv<unknown> }).kv.kv;
    const read: string[] = [];
    const counting = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop !== "keys") return Reflect.get(target, prop, receiver);
        return async (filter?: string) => {
          const it = await target.keys(filter);
          return (async function* () {
            for await (const k of it) {
              read.push(k);
              yield k;
            }
          })();
        };
      },
    }) as KV;
    const store = new BudgetStore(new TypedKv(counting, { encode: encodeTenantBudget, decode: decodeTenantBudget }));
    const tenantsBefore = await store.tenants();
    for (let i = 0; i < 25; i++) {
      const jobId = `scan-${i}`;
      await store.noteAllocation("scan-co", jobId, { taskId: `${jobId}-0`, epoch: 1 }, 10);
      await store.markJobSettled({
        jobId,
        tenant: "scan-co",
        total: 10,
        settledAtMs: NOW,
        allocs: { [`${jobId}-0:1`]: 10 },
      });
      await store.deleteJobAllocations(jobId);
    }
    read.length = 0;
    const tenants = await store.tenants();
    expect(tenants.sort()).toEqual([...tenantsBefore].sort());
    expect(read).toHaveLength(tenants.length); // only the tenant documents' keys
    expect(await store.jobAllocationIds()).not.toContain("scan-0");
    expect((await store.settledJobIds()).has("scan-24")).toBe(true);
  });
});
