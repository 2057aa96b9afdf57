/**
 * Tenant budgets made durable: one KV key per tenant in `capa_budgets` (`t.<tenant>`), changed only through the pure
 * transitions of @capa/market (`applyBudgetOp`) inside a CAS read-modify-write. Two schedulers (or two
 * concurrent submissions in one) admitting jobs for the same tenant serialize on the key's revision: the loser
 * of a race re-reads and re-decides against the winner's state, so the sum of reservations can never pass the
 * cap, whatever the interleaving.
 *
 * The same bucket keeps the settler's per-job bookkeeping under other prefixes, so listing the tenants
 * (`t.>`) never reads a job key:
 * - `allocs.<jobId>`: the job's allocations the settler started settling (noted BEFORE the ledger write) and
 *   the charge the ledger stored for each (noted after). A job's settled spend is then one KV read, plus an
 *   exact-subject ledger read for an allocation whose amount was not noted yet; never a scan of the tenant's
 *   charges. Deleted once the job's `settled.<jobId>` marker (which takes over its charges) is written.
 * - `settled.<jobId>`: written once the final job is completely settled (allocations, reservation,
 *   `job.spent`). A new leader lists these keys once and skips those jobs, so recovery costs what is
 *   unsettled, not all history.
 *
 * Tenant documents were unprefixed (`<tenant>`) before the first release; nothing was deployed with that
 * layout, so there is no migration: a bucket written by a pre-release build must be recreated.
 */
import { type Codec, GroupCommit, jsonCodec, jsPlacement, TypedKv } from "@capa/bus";
import { ConflictError, type Micros } from "@capa/domain";
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

/** `allocs.<jobId>`: allocation key ("<taskId>:<epoch>") → charge stored in the ledger (null = not known yet). */
export interface JobAllocations {
  jobId: string;
  tenant: string;
  allocs: Record<string, { taskId: string; epoch: number; charge: Micros | null }>;
}

/** `settled.<jobId>`: the job's final settlement. */
export interface JobSettledMarker {
  jobId: string;
  tenant: string;
  total: Micros;
  settledAtMs: number;
  /** The charge of each allocation in `total` (allocation key → charge); `allocs.<jobId>` is deleted after. */
  allocs?: Record<string, Micros>;
}

const TENANT_PREFIX = "t.";
const ALLOCS_PREFIX = "allocs.";
const SETTLED_PREFIX = "settled.";

/** The name a key token stands for (`budgetKey` reversed). */
function fromToken(token: string): string {
  return token.startsWith("=") ? Buffer.from(token.slice(1), "base64url").toString("utf8") : token;
}

function jobToken(jobId: string): string {
  return budgetKey(jobId);
}

export async function openBudgetStore(
  nc: NatsConnection,
  options: { replicas?: number; placementCluster?: string } = {},
): Promise<BudgetStore> {
  const js = jetstream(nc);
  const placement = jsPlacement(options.placementCluster);
  const kv = await new Kvm(js).create(BUDGET_BUCKET, {
    storage: "file",
    history: 5,
    replicas: options.replicas ?? 1,
    ...(placement ? { placement } : {}),
  });
  const jsm = await js.jetstreamManager();
  // A key's messages purged from the stream leave no delete marker, so a listing never walks old jobs' keys.
  const erase = async (key: string) => {
    await jsm.streams.purge(`KV_${BUDGET_BUCKET}`, { filter: `$KV.${BUDGET_BUCKET}.${key}` });
  };
  return new BudgetStore(new TypedKv(kv, budgetCodec), erase);
}

export class BudgetStore {
  private readonly allocKv: TypedKv<JobAllocations>;
  private readonly markerKv: TypedKv<JobSettledMarker>;
  /** Tenant documents: concurrent operations of one tenant are merged into one CAS write (group commit). */
  private readonly tenantCommits: GroupCommit<TenantBudget>;

  /** `erase` removes a key and its history without a delete marker (default: the KV's purge, which leaves one). */
  constructor(
    private readonly kv: TypedKv<TenantBudget>,
    private readonly erase: (key: string) => Promise<void> = (key) => kv.kv.purge(key),
  ) {
    this.tenantCommits = new GroupCommit(kv);
    this.allocKv = new TypedKv(kv.kv, jsonCodec<JobAllocations>());
    this.markerKv = new TypedKv(kv.kv, jsonCodec<JobSettledMarker>());
  }

  /**
   * Applies one operation with CAS. Operations of one tenant that arrive while a write of its document is in
   * flight are group-committed: applied one after the other by the same pure transition, each to the state the
   * previous one left, and stored with one CAS write; every caller is answered after that write is durable. A
   * conflict (another process wrote) re-applies the whole batch to the stored state. So the stored document is
   * always the result of applying, one at a time, operations that each passed the caps against everything before
   * them, exactly as with one write per operation (see README "Budgets: group commit"), and concurrent submits of
   * one tenant in this process never conflict with each other. A BudgetExceededError thrown by the transition
   * fails only its own operation and reaches its caller (admission maps it to FAILED_PRECONDITION).
   */
  async apply(tenant: string, op: BudgetOp, nowMs: number): Promise<BudgetOutcome> {
    let outcome: BudgetOutcome | undefined;
    const change = (current: TenantBudget | undefined) => {
      outcome = applyBudgetOp(current, tenant, op, nowMs);
      return outcome.changed ? outcome.state : undefined;
    };
    // A rate confirmation (extend by nothing) that changes nothing on the kept document changes nothing on a
    // newer one: a reservation's rate only grows while it exists (a newer document shows it higher, or shows it
    // gone, and then there is nothing to guard), so its no-op needs no fresh read. Anything it refuses (no such
    // reservation, over the hourly cap) is decided again on a fresh read, as every refusal is.
    const noopOnKept = op.kind === "extend" && op.amount === 0;
    const stored = await this.tenantCommits.mutate(TENANT_PREFIX + budgetKey(tenant), change, { noopOnKept });
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

  /** Grows the reservation by `amount`; with `hourly`, also sets its rate (checked against the hourly cap). */
  extend(tenant: string, jobId: string, amount: Micros, nowMs: number, hourly?: Micros): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "extend", jobId, amount, ...(hourly === undefined ? {} : { hourly }) }, nowMs);
  }

  release(tenant: string, jobId: string, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "release", jobId }, nowMs);
  }

  settle(tenant: string, jobId: string, actual: Micros, nowMs: number): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "settle", jobId, actual }, nowMs);
  }

  /**
   * Changes the caps given (a cap left undefined keeps its stored value) and records who and when, inside the
   * CAS: a concurrent change to the other cap is re-read on conflict, never written over.
   */
  setLimits(
    tenant: string,
    limits: { hourlyCap?: Micros; monthlyCap?: Micros; updatedBy?: string },
    nowMs: number,
  ): Promise<BudgetOutcome> {
    return this.apply(tenant, { kind: "set-limits", ...limits }, nowMs);
  }

  async get(tenant: string, nowMs: number): Promise<TenantBudget> {
    return (await this.kv.get(TENANT_PREFIX + budgetKey(tenant)))?.value ?? emptyBudget(tenant, nowMs);
  }

  async summary(tenant: string, nowMs: number): Promise<BudgetSummary> {
    return summarize(await this.get(tenant, nowMs), nowMs);
  }

  /**
   * Every tenant that has a budget document (the reconcile pass walks their reservations): one key listing
   * filtered to `t.>`, so the settler's per-job keys are never read.
   */
  async tenants(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.kv.keys(`${TENANT_PREFIX}>`))
      out.push(fromToken(key.slice(TENANT_PREFIX.length)));
    return out;
  }

  /** Notes an allocation of the job: `charge` undefined = about to be settled, a number = what the ledger holds. */
  async noteAllocation(
    tenant: string,
    jobId: string,
    alloc: { taskId: string; epoch: number },
    charge?: Micros,
  ): Promise<void> {
    const key = `${alloc.taskId}:${alloc.epoch}`;
    await this.allocKv.mutate(ALLOCS_PREFIX + jobToken(jobId), (cur) => {
      const doc = cur ?? { jobId, tenant, allocs: {} };
      const known = doc.allocs[key];
      const next = charge ?? known?.charge ?? null;
      if (known && known.charge === next) return undefined;
      return { ...doc, allocs: { ...doc.allocs, [key]: { taskId: alloc.taskId, epoch: alloc.epoch, charge: next } } };
    });
  }

  async jobAllocations(jobId: string): Promise<JobAllocations | undefined> {
    return (await this.allocKv.get(ALLOCS_PREFIX + jobToken(jobId)))?.value;
  }

  /** Removes `allocs.<jobId>` (once the job's settled marker holds its charges); a no-op when there is none. */
  async deleteJobAllocations(jobId: string): Promise<void> {
    await this.erase(ALLOCS_PREFIX + jobToken(jobId));
  }

  /** Ids of the jobs that have an `allocs.<jobId>` document (unsettled jobs, and leftovers of a crash). */
  async jobAllocationIds(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.kv.keys(`${ALLOCS_PREFIX}>`))
      out.push(fromToken(key.slice(ALLOCS_PREFIX.length)));
    return out;
  }

  /** Writes the job's settled marker; the first one wins, unless `replace` (a late allocation re-settled). */
  async markJobSettled(marker: JobSettledMarker, replace = false): Promise<void> {
    const key = SETTLED_PREFIX + jobToken(marker.jobId);
    if (!replace) {
      // A job is settled once, so the marker is almost always new: created without reading first (a CAS create,
      // so an existing marker is never written over; its conflict means the first one is there and wins).
      try {
        await this.markerKv.create(key, marker);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      return;
    }
    await this.markerKv.mutate(key, () => marker);
  }

  async settledMarker(jobId: string): Promise<JobSettledMarker | undefined> {
    return (await this.markerKv.get(SETTLED_PREFIX + jobToken(jobId)))?.value;
  }

  /** Ids of every completely settled job: one key listing, no values read. */
  async settledJobIds(): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const key of await this.kv.kv.keys(`${SETTLED_PREFIX}>`))
      out.add(fromToken(key.slice(SETTLED_PREFIX.length)));
    return out;
  }
}
