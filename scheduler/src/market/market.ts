/**
 * The marketplace inside the scheduler, wired in one place: the ledger (JetStream, exactly-once settlement,
 * Ed25519 receipts), tenant budgets (KV, CAS), admission, settlement, the usage consumer and the budget watch.
 * Every replica opens the ledger and budgets (reads, admission, BillingService); only the leader runs the parts
 * in `leaderParts`, among them the reservation reconcile pass (at leader start, then every
 * `reconcileIntervalMs`): reservations older than `reservationGraceMs` whose job does not exist are released.
 */
import type { NatsConnection, Store } from "@capa/bus";
import type { Job } from "@capa/domain";
import { type BudgetStore, type Ledger, loadOrCreateSigningKey, openBudgetStore, openLedger } from "@capa/ledger";
import { quote } from "@capa/market";
import type { Logger } from "pino";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";
import { Admission } from "./admission.js";
import { BudgetWatch } from "./budget-watch.js";
import { SeenUsage } from "./seen-usage.js";
import { Settler } from "./settler.js";
import { offerSources } from "./sources.js";
import { UsageConsumer } from "./usage-consumer.js";

export interface MarketOptions {
  nc: NatsConnection;
  store: Store;
  feeBasisPoints: number;
  receiptKeyPath: string;
  budgetCheckIntervalMs: number;
  replicas: number;
  /** The home cluster the ledger and budgets are pinned to (a supercluster); none on a lone server. */
  placementCluster?: string;
  cluster: ClusterStateApi;
  jobs: JobRepo;
  providerOf: (agentId: string) => string;
  cancel: (jobId: string, reason: string) => Promise<unknown>;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => number;
  /** Whether the agent has a listing for the task (usage from an agent that never held it is dropped). */
  listed?: (agentId: string, taskId: string) => boolean;
  /** An accepted usage report from this agent (it was alive then). */
  heard?: (agentId: string) => void;
  /** A reservation whose job does not exist is released once this old (default 5 min). */
  reservationGraceMs?: number;
  /** How often the leader looks for such reservations (default 5 min; also once at leader start). */
  reconcileIntervalMs?: number;
}

export const DEFAULT_RESERVATION_GRACE_MS = 5 * 60_000;

export interface Market {
  ledger: Ledger;
  budgets: BudgetStore;
  admission: Admission;
  leaderParts: LeaderPart[];
  /** The quote's reason when every offer is above the job's max price (it names the cheapest offer). */
  marketReason(job: Job): string | undefined;
}

export async function openMarket(o: MarketOptions): Promise<Market> {
  const signingKey = loadOrCreateSigningKey(o.receiptKeyPath);
  const ledger = await openLedger(o.nc, {
    feeBasisPoints: o.feeBasisPoints,
    signingKey,
    now: o.now,
    replicas: o.replicas,
    ...(o.placementCluster ? { placementCluster: o.placementCluster } : {}),
  });
  const budgets = await openBudgetStore(o.nc, {
    replicas: o.replicas,
    ...(o.placementCluster ? { placementCluster: o.placementCluster } : {}),
  });
  const logger = o.logger.child({ component: "market" });
  const seenUsage = new SeenUsage();
  const settler = new Settler({
    ledger,
    budgets,
    jobs: o.jobs,
    store: o.store,
    providerOf: o.providerOf,
    metrics: o.metrics,
    logger,
    now: o.now,
    seenUsage,
  });
  const watch = new BudgetWatch({
    jobs: o.jobs,
    budgets,
    settler,
    cancel: o.cancel,
    metrics: o.metrics,
    logger,
    now: o.now,
    maxCheckIntervalMs: o.budgetCheckIntervalMs,
  });
  const usage = new UsageConsumer({
    store: o.store,
    jobs: o.jobs,
    watch,
    metrics: o.metrics,
    logger,
    now: o.now,
    ...(o.listed ? { listed: o.listed } : {}),
    ...(o.heard ? { heard: o.heard } : {}),
    seen: seenUsage,
  });
  let leading = false;
  o.jobs.onChange((entry, previous) => {
    if (!leading) return;
    settler.observe(entry);
    // A task was placed (new epoch: the reservation's rate is refreshed), started, or the job was re-placed:
    // check the job now and arm its budget timers.
    const changed = entry.job.tasks.some((t, i) => {
      const before = previous?.job.tasks[i];
      return (t.epoch > 0 && before?.epoch !== t.epoch) || (t.startedAtMs > 0 && before?.startedAtMs !== t.startedAtMs);
    });
    if (changed) void watch.check(entry.job.id);
  });
  const admission = new Admission(budgets, o.cluster, o.jobs, o.now);
  const graceMs = o.reservationGraceMs ?? DEFAULT_RESERVATION_GRACE_MS;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let reconciling: Promise<void> | undefined;
  const reconcile = () => {
    reconciling ??= admission
      .reconcile(graceMs)
      .then((released) => {
        for (const r of released)
          logger.warn(r, "released a reservation whose job does not exist (leaked by an interrupted submission)");
      })
      .catch((err) => logger.warn({ err }, "reservation reconcile failed; retrying at the next pass"))
      .finally(() => {
        reconciling = undefined;
      });
    return reconciling;
  };
  logger.info({ keyId: signingKey.keyId, feeBasisPoints: o.feeBasisPoints }, "ledger open");
  return {
    ledger,
    budgets,
    admission,
    leaderParts: [
      {
        start: () => {
          leading = true;
          settler.start();
        },
        stop: async () => {
          leading = false;
          await settler.stop();
        },
      },
      usage,
      {
        start: () => watch.start(),
        stop: () => watch.stop(),
      },
      {
        start: () => {
          void reconcile();
          reconcileTimer = setInterval(() => void reconcile(), o.reconcileIntervalMs ?? graceMs);
          reconcileTimer.unref();
        },
        stop: async () => {
          clearInterval(reconcileTimer);
          reconcileTimer = undefined;
          await reconciling;
        },
      },
    ],
    marketReason(job) {
      if (job.spec.maxPricePerGpuHour <= 0) return undefined;
      const q = quote(job.spec, offerSources(o.cluster), { running: [] }, o.now());
      return q.reasonCode === "over-max-price" ? q.reason : undefined;
    },
  };
}
