/**
 * Tenant budgets made durable: one KV key per tenant in `capa_budgets`, changed only through the pure
 * transitions of @capa/market (`applyBudgetOp`) inside a CAS read-modify-write. Two schedulers (or two
 * concurrent submissions in one) admitting jobs for the same tenant serialize on the key's revision: the loser
 * of a race re-reads and re-decides against the winner's state, so the sum of reservations can never pass the
 * cap, whatever the interleaving.
 */
import { type Codec, TypedKv } from "@capa/bus";
import type { Micros } from "@capa/domain";
import {
  applyBudgetOp,
  type BudgetOp,
  type BudgetOutcome,
  type BudgetSummary,
  decodeTenantBudget,
  emptyBudget,
  encodeTenantBudget,
  summarize,
  type TenantBudget,
} from "@capa/market";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUDGET_BUCKET, InvalidLedgerKeyError } from "./subjects.js";

const budgetCodec: Codec<TenantBudget> = { encode: encodeTenantBudget, decode: decodeTenantBudget };

const KV_KEY = /^[A-Za-z0-9_-]+$/;

/** KV keys allow fewer characters than tenant names: plain names as is, others "=" + base64url. */
export function budgetKey(tenant: string): string {
  if (tenant === "") throw new InvalidLedgerKeyError("tenant must not be empty");
  return KV_KEY.test(tenant) ? tenant : `=${Buffer.from(tenant, "utf8").toString("base64url")}`;
}

export async function openBudgetStore(nc: NatsConnection, options: { replicas?: number } = {}): Promise<BudgetStore> {
  const kv = await new Kvm(jetstream(nc)).create(BUDGET_BUCKET, {
    storage: "file",
    history: 5,
    replicas: options.replicas ?? 1,
  });
  return new BudgetStore(new TypedKv(kv, budgetCodec));
}

export class BudgetStore {
  constructor(private readonly kv: TypedKv<TenantBudget>) {}

  /**
   * Applies one operation with CAS, retrying on conflict. A BudgetExceededError thrown by the transition
   * leaves the stored document unchanged and reaches the caller (admission maps it to FAILED_PRECONDITION).
   */
  async apply(tenant: string, op: BudgetOp, nowMs: number): Promise<BudgetOutcome> {
    let outcome: BudgetOutcome | undefined;
    const stored = await this.kv.mutate(budgetKey(tenant), (current) => {
      outcome = applyBudgetOp(current, tenant, op, nowMs);
      return outcome.changed ? outcome.state : undefined;
    });
    // mutate ran the transition at least once, against the state it finally wrote over (or left alone).
    return outcome ?? { changed: false, state: stored?.value ?? emptyBudget(tenant, nowMs), overrun: 0 };
  }

  reserve(
    tenant: string,
    jobId: string,
    expected: { total: Micros; hourly: Micros },
    nowMs: number,
    jobBudget = 0,
  ): Promise<BudgetOutcome> {
    const op: BudgetOp = { kind: "reserve", jobId, amount: expected.total, hourly: expected.hourly, jobBudget };
    return this.apply(tenant, op, nowMs);
  }

  extend(tenant: string, jobId: string, amount: Micros, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "extend", jobId, amount }, nowMs);
  }

  release(tenant: string, jobId: string, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "release", jobId }, nowMs);
  }

  settle(tenant: string, jobId: string, actual: Micros, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "settle", jobId, actual }, nowMs);
  }

  setLimits(tenant: string, limits: { hourlyCap: Micros; monthlyCap: Micros }, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "set-limits", ...limits }, nowMs);
  }

  async get(tenant: string, nowMs: number): Promise<TenantBudget> {
    return (await this.kv.get(budgetKey(tenant)))?.value ?? emptyBudget(tenant, nowMs);
  }

  async summary(tenant: string, nowMs: number): Promise<BudgetSummary> {
    return summarize(await this.get(tenant, nowMs), nowMs);
  }
}
