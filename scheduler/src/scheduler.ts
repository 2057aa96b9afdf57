/**
 * Wiring only: builds the store, state, planner, consumers and gRPC server, and hands back a handle.
 * Every replica loads state from KV, follows adverts/heartbeats and KV changes, and serves reads; the one
 * holding the leader lease also plans, applies, folds task status and detects lost agents.
 */
import { connectBus, ensureStore, jsonCodec, storeLayout } from "@capa/bus";
import { isFinalJobState } from "@capa/domain";
import { Fleet } from "./agents/fleet.js";
import { listenToAgents } from "./agents/listener.js";
import { AgentLiveness } from "./agents/liveness.js";
import { AgentRegistry } from "./agents/registry.js";
import { AuditLog } from "./audit/audit-log.js";
import { admitWithTenantPolicy, withDefaultMaxPrice } from "./auth/admission.js";
import { bootstrapAdmin } from "./auth/bootstrap.js";
import { KeyStore } from "./auth/key-store.js";
import { TenantPolicies } from "./auth/tenant-policy.js";
import { openCheckpointStore, startCheckpointBroker } from "./checkpoints/broker.js";
import { resolveConfig, type SchedulerConfig } from "./config.js";
import { auditHandlers, authHandlers } from "./grpc/auth-handlers.js";
import { billingHandlers } from "./grpc/billing-handlers.js";
import { advertisedGpuModels } from "./grpc/edge.js";
import { jobHandlers } from "./grpc/job-handlers.js";
import { type MarketHandlers, marketHandlers } from "./grpc/market.js";
import { operatorHandlers } from "./grpc/operator-handlers.js";
import { SERVICE_NAMES, startGrpcServer } from "./grpc/server.js";
import { advertisedAddress, WriteRouter } from "./ha/index.js";
import { type HttpEdge, type HttpRoute, httpRoutes, startHttpEdge } from "./http/index.js";
import { startIntake } from "./intake/index.js";
import { JobService } from "./jobs/job-service.js";
import { LogReader } from "./jobs/logs.js";
import { Leadership } from "./leader/leadership.js";
import { LeaseKeeper } from "./leader/lease-keeper.js";
import { openMarket } from "./market/market.js";
import { SchedulerMetrics } from "./metrics.js";
import { observeScheduler } from "./observability/index.js";
import { PlanApplier } from "./planner/apply.js";
import { clusterSync, resyncAgent } from "./planner/cluster-sync.js";
import { createPlacement } from "./planner/engine.js";
import { EpochSource } from "./planner/epochs.js";
import { EvalQueue } from "./planner/eval-queue.js";
import { ExplanationStore } from "./planner/explanations.js";
import { PlannerWorker } from "./planner/worker.js";
import { PolicyService } from "./policy/policy-service.js";
import { ReplayRunner, ReplayService } from "./replay/index.js";
import { RequestClaims } from "./requests/claims.js";
import { Compactor } from "./retention/compactor.js";
import { retrainOnDrift, startSchedules } from "./schedules/index.js";
import { startServices } from "./services/index.js";
import { AllocRepo } from "./store/alloc-repo.js";
import { buckets } from "./store/buckets.js";
import { JobRepo } from "./store/job-repo.js";
import type { AgentRecord } from "./store/records.js";
import { lastRevision, watchBucket } from "./store/watch.js";
import { StatusConsumer } from "./tasks/status-consumer.js";

export interface SchedulerHandle {
  /** The bound gRPC address, "host:port". */
  grpcAddress: string;
  /** "host:port" of the metrics endpoint when `metricsPort` was set. */
  metricsAddress?: string;
  /** "http(s)://host:port" of the HTTP edge when `httpPort` was set. */
  httpUrl?: string;
  /** The routes the HTTP edge serves (empty when it is off): the security suite walks them. */
  httpRoutes: readonly HttpRoute[];
  schedulerId: string;
  /** Where the bootstrap admin credential was written, when this start made one. */
  adminCredentialsFile?: string;
  /** Whether this replica currently holds the leader lease. */
  isLeader(): boolean;
  stop(): Promise<void>;
}

export interface SchedulerExtensions {
  /** Replaces the Quote/ListOffers handlers (tests); by default they read the live order book. */
  market?: MarketHandlers;
}

export async function startScheduler(config: SchedulerConfig, ext: SchedulerExtensions = {}): Promise<SchedulerHandle> {
  const cfg = resolveConfig(config);
  const { logger, now } = cfg;
  const log = logger.child({ scheduler: cfg.schedulerId });
  const nc = await connectBus({
    servers: cfg.natsUrl,
    name: `capa-scheduler-${cfg.schedulerId}`,
    asyncTraces: false,
    ...(cfg.natsNkeySeed ? { nkeySeed: cfg.natsNkeySeed } : {}),
  });
  const cleanups: (() => Promise<void> | void)[] = [() => nc.close()];
  try {
    const layout = storeLayout(nc, cfg.replicas);
    log.info(layout, "JetStream layout");
    const store = await ensureStore(nc, layout);
    const metrics = new SchedulerMetrics();
    const b = buckets(store, (bucket) => metrics.kvObserver(bucket));
    const { cluster, engine } = createPlacement();
    const jobs = new JobRepo(b.jobs, now, cfg.retiredJobCacheSize);
    const allocs = new AllocRepo(b.allocs, now);
    const registry = new AgentRegistry(b.agents, cluster, now, cfg.agentTimeoutMs);
    const queue = new EvalQueue(now);
    const epochs = new EpochSource();
    const explanations = new ExplanationStore(b.explanations, log);
    const market = await openMarket({
      nc,
      store,
      feeBasisPoints: cfg.feeBasisPoints,
      receiptKeyPath: cfg.receiptKeyPath,
      budgetCheckIntervalMs: cfg.budgetCheckIntervalMs,
      replicas: layout.replicas,
      ...(layout.placementCluster ? { placementCluster: layout.placementCluster } : {}),
      cluster,
      jobs,
      providerOf: (agentId) => registry.get(agentId)?.record.advert.provider ?? "",
      listed: (agentId, taskId) => allocs.isListed(agentId, taskId),
      heard: (agentId) => registry.heard(agentId),
      cancel: (jobId, reason) => jobService.cancel(jobId, reason),
      metrics,
      logger: log,
      now,
    });
    const policy = new PolicyService(engine, b.policy, b.profiles, now, log);
    const applier = new PlanApplier(allocs, jobs, registry, now, log);
    const worker = new PlannerWorker({
      jobs,
      allocs,
      agents: registry,
      cluster,
      engine,
      applier,
      queue,
      epochs,
      explanations,
      metrics,
      logger: log,
      now,
      retryDelayMs: cfg.retryDelayMs,
      marketReason: (job) => market.marketReason(job),
      placementSpec: (job) => withDefaultMaxPrice(job.spec, () => tenants.effective(job.tenant).defaultMaxPrice),
    });
    const lease = { leader: false };
    const evaluate = (jobId: string, reason: string, backoff = false) => {
      if (lease.leader) queue.enqueue(jobId, reason, backoff ? cfg.retryDelayMs : 0);
    };
    const capacityChanged = (reason: string) => {
      if (lease.leader) worker.enqueueWaiting(reason);
    };

    // State from KV, then keep it current: the cluster state follows the assignments.
    const sync = clusterSync(
      cluster,
      (jobId) => {
        const spec = jobs.get(jobId)?.job.spec;
        return spec && { priority: spec.priority, interruptible: spec.interruptible };
      },
      log,
      () => metrics.overCommits.inc(),
    );
    allocs.onChange(sync);
    const skip = (key: string, err: unknown) => log.error({ err, key }, "skipping an undecodable KV entry");
    // Each watch starts after the revision its bucket had before the load: nothing written in between is missed.
    const [policyAfter, agentsAfter, jobsAfter, allocsAfter] = await Promise.all(
      [store.policy, store.agents, store.jobs, store.allocs].map((kv) => lastRevision(kv)),
    );
    await policy.load();
    await registry.load(skip);
    await jobs.load(skip);
    await allocs.load(skip);
    const agentCodec = jsonCodec<AgentRecord>();
    const watches = await Promise.all([
      watchBucket(store.jobs, "*", (e) => jobs.observeWatched(e), log, { after: jobsAfter }),
      watchBucket(store.allocs, ">", (e) => allocs.observeWatched(e), log, { after: allocsAfter }),
      watchBucket(store.agents, ">", (e) => registry.observeWatched(e, agentCodec.decode), log, { after: agentsAfter }),
      watchBucket(store.policy, ">", (e) => policy.observeWatched(e), log, { after: policyAfter }),
    ]);
    allocs.follow(watches[1]);
    cleanups.push(() => {
      for (const w of watches) w.stop();
    });
    // Every job seen created (by this replica or another: JobService asks for no evaluation of its own) and every
    // cancel request needs the leader's attention.
    jobs.onChange((entry, previous) => {
      if (!previous || (entry.job.cancelRequested && !previous.job.cancelRequested))
        if (!isFinalJobState(entry.job.state) || entry.job.cancelRequested) evaluate(entry.job.id, "job changed");
    });

    const observed = observeScheduler({
      metrics,
      nc,
      js: store.js,
      jobs,
      cluster,
      isLeader: () => lease.leader,
      logger: log,
      now,
    });
    cleanups.push(() => observed.stop());

    const listener = listenToAgents(
      nc,
      registry,
      {
        onAdvert: (agentId, outcome) => {
          if (outcome.joined) resyncAgent(cluster, agentId, allocs.get(agentId)?.value.tasks ?? [], sync);
          if (!outcome.changed || !lease.leader) return;
          registry.persist(agentId).catch((err) => log.warn({ err, agentId }, "could not persist an advert"));
          capacityChanged(outcome.joined ? `agent ${agentId} joined` : `agent ${agentId} changed`);
        },
        onRevived: (agentId) => {
          resyncAgent(cluster, agentId, allocs.get(agentId)?.value.tasks ?? [], sync);
          if (!lease.leader) return;
          registry.persist(agentId).catch((err) => log.warn({ err, agentId }, "could not persist an agent"));
          capacityChanged(`agent ${agentId} is back`);
        },
        onRefused: (reason) => metrics.advertsRefused.inc({ reason }),
      },
      log,
      { maxPricePerGpuHour: cfg.maxAdvertPricePerGpuHour },
    );
    cleanups.push(() => listener.stop());

    const statuses = new StatusConsumer({
      store,
      jobs,
      allocs,
      applier,
      metrics,
      logger: log,
      now,
      evaluate,
      capacityFreed: () => capacityChanged("capacity freed"),
      heard: (agentId) => registry.heard(agentId),
      coalesceMs: cfg.statusCoalesceMs,
    });
    const liveness = new AgentLiveness(
      { registry, jobs, allocs, metrics, logger: log, now, evaluate, partitionGraceMs: cfg.partitionGraceMs },
      cfg.livenessIntervalMs,
    );
    const claims = new RequestClaims(b.requestRegisters, {
      onSettled: (c) =>
        metrics.requestClaims.inc({
          outcome: !c.claim ? "failed" : c.claim.mine ? "claimed" : "found",
          registers_failed: String(c.failed),
        }),
    });
    const jobService = new JobService(jobs, claims, now, evaluate, () => metrics.jobsSubmitted.inc(), market.admission);
    // The submit fallback: a submission stuck on a leaderless stream is acknowledged from an intake stream.
    const intake = startIntake({
      nc,
      store,
      jobs: jobService,
      repo: jobs,
      metrics,
      logger: log,
      stallBudgetMs: cfg.submitStallBudgetMs,
    });
    cleanups.push(() => intake.stop());
    const leadership = new Leadership({
      jobs,
      allocs,
      registry,
      applier,
      epochs,
      queue,
      worker,
      liveness,
      statuses,
      logger: log,
      sweepIntervalMs: 5_000,
      extras: [
        ...market.leaderParts,
        ...intake.leaderParts,
        new Compactor({
          jobs,
          claims,
          now,
          logger: log,
          retentionMs: cfg.retentionMs,
          intervalMs: cfg.retentionSweepIntervalMs,
          batch: cfg.retentionBatch,
        }),
      ],
    });

    // What every leader-run room (services, schedules) is built on.
    const room = {
      store,
      layout,
      jobs: jobService,
      repo: jobs,
      edge: { logger: log, metrics },
      isLeader: () => lease.leader,
      logger: log,
      now,
    };
    const schedules = await startSchedules({
      ...room,
      knownGpuModels: advertisedGpuModels(cluster),
      admit: (tenant, spec) => admitWithTenantPolicy(tenants.effective(tenant), spec),
    });
    cleanups.push(() => schedules.stop());
    const services = await startServices({
      ...room,
      nc,
      replicaId: cfg.schedulerId,
      retrain: retrainOnDrift(schedules.api),
    });
    cleanups.push(() => services.stop());
    const checkpoints = startCheckpointBroker({
      nc,
      store: await openCheckpointStore(nc, layout),
      assignments: (agentId) => allocs.get(agentId)?.value.tasks ?? [],
      maxBytes: cfg.checkpointCopyMaxBytes,
      logger: log,
    });
    cleanups.push(() => checkpoints.stop());
    const fleet = new Fleet(registry, allocs, cluster, now, () => capacityChanged("agent undrained"));
    const keys = await KeyStore.open(nc, log, layout);
    cleanups.push(() => keys.stop());
    const tenants = await TenantPolicies.open(
      nc,
      { maxPriority: cfg.defaultMaxPriority, defaultMaxPrice: cfg.defaultMaxPricePerGpuHour },
      log,
      layout,
    );
    cleanups.push(() => tenants.stop());
    const audit = await AuditLog.open(store, log, layout);
    cleanups.push(() => audit.close());
    const authDeps = { logger: log, metrics, keys, tenants, audit, now };
    const leaseView: { keeper?: LeaseKeeper } = {};
    const writes = new WriteRouter(
      { self: cfg.schedulerId, isLeader: () => lease.leader, currentLeader: () => leaseView.keeper?.currentLeader() },
      { channelCredentials: cfg.tls ? null : undefined },
    );
    cleanups.push(() => writes.close());
    const replayRunner = new ReplayRunner(log, cfg.replayTimeoutMs);
    cleanups.push(() => replayRunner.stop());
    const replays = new ReplayService(engine, replayRunner);
    const grpc = await startGrpcServer({
      address: cfg.grpcAddress,
      logger: log,
      ...(cfg.tls ? { tls: cfg.tls } : {}),
      guard: { logger: log, metrics, keys: keys.table, audit, now, writes },
      authService: authHandlers(authDeps),
      auditService: auditHandlers(authDeps),
      jobService: jobHandlers({
        logger: log,
        metrics,
        jobs: jobService,
        repo: jobs,
        logs: new LogReader(store, jobs, cfg.logDrainGraceMs),
        market: ext.market ?? marketHandlers({ logger: log, metrics, cluster, engine, jobs, fleet, now }),
        knownGpuModels: advertisedGpuModels(cluster),
        admit: (tenant, spec) => admitWithTenantPolicy(tenants.effective(tenant), spec),
      }),
      operatorService: operatorHandlers({
        logger: log,
        metrics,
        fleet,
        policy,
        explanations,
        repo: jobs,
        engine,
        cluster,
        now,
        onPolicyChanged: () => capacityChanged("policy changed"),
        replays,
        replicaContext: services.replicaContext,
      }),
      billingService: billingHandlers({
        logger: log,
        metrics,
        ledger: market.ledger,
        budgets: market.budgets,
        jobs,
        now,
        providerOf: (agentId) => registry.get(agentId)?.record.advert.provider ?? "",
      }),
      serviceService: services.handlers,
      scheduleService: schedules.handlers,
    });
    cleanups.push(() => grpc.stop(1000));
    const adminCredentialsFile = await bootstrapAdmin(
      keys,
      { dataDir: cfg.dataDir, bootstrapToken: cfg.bootstrapToken, address: grpc.address, now: now() },
      log,
    );

    const keeper = new LeaseKeeper(
      b.leader,
      cfg.schedulerId,
      cfg.leaseTtlMs,
      now,
      {
        elected: async () => {
          lease.leader = true;
          metrics.leader.set(1);
          // Recovery runs beside the lease renewals; a failed start (store hiccup) is retried while still leader.
          const begin = (): void => {
            leadership.start().catch(() => {
              if (lease.leader) setTimeout(begin, 1_000).unref();
            });
          };
          begin();
        },
        demoted: async () => {
          lease.leader = false;
          metrics.leader.set(0);
          await leadership.stop();
        },
      },
      log,
      advertisedAddress(grpc.address, cfg.advertiseAddress),
    );
    leaseView.keeper = keeper;
    await keeper.start();
    cleanups.push(() => keeper.stop());

    let metricsServer: { address: string; close(): Promise<void> } | undefined;
    if (cfg.metricsPort !== undefined) {
      metricsServer = await metrics.serve(cfg.metricsHost, cfg.metricsPort);
      cleanups.push(() => metricsServer?.close());
    }

    let http: HttpEdge | undefined;
    if (cfg.httpPort !== undefined) {
      const routes = httpRoutes({
        schedulerId: cfg.schedulerId,
        isLeader: () => lease.leader && leadership.isActive,
        fleet,
        jobs,
        explanations,
        policy,
        ledger: market.ledger,
        providerOf: (agentId) => registry.get(agentId)?.record.advert.provider ?? "",
        now,
        pending: intake.index,
        replays,
        services: services.api,
        schedules: schedules.api,
      });
      http = await startHttpEdge({
        host: cfg.httpHost,
        port: cfg.httpPort,
        routes,
        keys: keys.table,
        logger: log,
        now,
        metrics,
        audit,
        ...(cfg.tls ? { tls: cfg.tls } : {}),
      });
      cleanups.push(() => http?.close());
    }

    for (const name of ["", ...SERVICE_NAMES]) grpc.health.setStatus(name, "SERVING");
    log.info({ grpc: grpc.address, leader: lease.leader }, "scheduler started");

    let stopped: Promise<void> | undefined;
    return {
      grpcAddress: grpc.address,
      ...(adminCredentialsFile ? { adminCredentialsFile } : {}),
      ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
      ...(http ? { httpUrl: http.url } : {}),
      httpRoutes: http?.routes ?? [],
      schedulerId: cfg.schedulerId,
      isLeader: () => lease.leader && leadership.isActive,
      stop: () => {
        stopped ??= (async () => {
          for (const name of ["", ...SERVICE_NAMES]) grpc.health.setStatus(name, "NOT_SERVING");
          await runCleanups(cleanups, log);
          log.info("scheduler stopped");
        })();
        return stopped;
      },
    };
  } catch (err) {
    await runCleanups(cleanups, log);
    throw err;
  }
}

async function runCleanups(cleanups: (() => Promise<void> | void)[], log: { warn: (o: object, m: string) => void }) {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      log.warn({ err }, "cleanup step failed");
    }
  }
}
