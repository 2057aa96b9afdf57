/**
 * The agent: wires discovery, advertiser, assignment watch, reconciler and task runners together. All decisions
 * are in reconciler.ts; this file only keeps the state those decisions read (desired, running, finished) and
 * applies their results. Reconcile runs on every assignment change, on every task exit and on every heartbeat tick,
 * so anything missed once is corrected on the next pass.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { BUCKETS, connectBus, inboxPrefixFor, type NatsConnection } from "@capa/bus";
import {
  type Advert,
  type Gpu,
  type GpuPrice,
  residencyOfRegion,
  type TaskAssignment,
  type TaskStatusReport,
} from "@capa/domain";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type Logger, pino } from "pino";
import type { AdvertBody } from "./advertiser.js";
import { Advertiser } from "./advertiser.js";
import { AssignmentsWatcher } from "./assignments-watcher.js";
import { CheckpointTransfer } from "./checkpoints/transfer.js";
import { AGENT_VERSION, type AgentConfig, type ResolvedAgentConfig, resolveAgentConfig } from "./config.js";
import { Drivers } from "./drivers/index.js";
import { AgentConfigError } from "./errors.js";
import { Fence, type FenceTimes, fenceAfterMs } from "./fence.js";
import { discoverGpus, discoverInventory, type GpuInventory } from "./gpu/discover.js";
import { type HostFacts, readHostFacts } from "./host.js";
import { AgentMetrics } from "./metrics/agent-metrics.js";
import { Outbox } from "./outbox.js";
import { servePriceControl } from "./price-control.js";
import { type ReconcileAction, reconcile } from "./reconciler.js";
import { recoverTaskRecords } from "./recovery.js";
import { Reporter } from "./reporter.js";
import { ReplicaProber, replicaProbeSpec } from "./service-replica.js";
import { TaskRecords } from "./task-records.js";
import { DEFAULT_KILL_GRACE_SECONDS, RunningTask } from "./task-runner.js";

export interface AgentHandle {
  readonly agentId: string;
  /** The last advert published. */
  advert(): Advert;
  /** The prices now advertised. */
  prices(): GpuPrice[];
  /** Changes the prices at runtime and re-advertises at once when they differ (running tasks keep theirs). */
  setPrices(prices: GpuPrice[]): void;
  /** Stops advertising, stops every task (SIGTERM → SIGKILL), flushes logs and reports, closes the connection. */
  stop(): Promise<void>;
}

export const SIMULATED_LABEL = "capa.io/simulated";
/** How long stop() waits for queued reports to be acknowledged before closing anyway. */
const SHUTDOWN_FLUSH_MS = 5_000;
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Simulated GPU temperatures, busy and idle. */
const SIM_BUSY_C = 68;
const SIM_IDLE_C = 32;
/** Consecutive nvidia-smi failures before the GPUs are advertised degraded. */
const DEGRADE_AFTER_FAILURES = 3;

interface Finished {
  report: TaskStatusReport;
  sentAtMs: number;
}

export async function startAgent(config: AgentConfig): Promise<AgentHandle> {
  const logger = config.logger ?? pino({ name: "capa-agent" });
  const host = await readHostFacts();
  const cfg = resolveAgentConfig(config, host.hostname);
  const inventory = await discoverInventory({
    simulateGpus: cfg.simulateGpus,
    agentId: cfg.agentId,
    nvidiaSmi: cfg.nvidiaSmi,
  });
  mkdirSync(cfg.workDir, { recursive: true });
  const drivers = await Drivers.detect({
    agentId: cfg.agentId,
    containerRuntime: cfg.containerRuntime,
    // Simulated GPUs have no CDI spec: a --device for them would make the runtime refuse the container.
    gpuMode: cfg.gpuMode ?? (inventory.simulated ? "env" : "cdi"),
  });
  // No task runs yet: any container labelled with this agent was left by an earlier life.
  await drivers.container?.removeLeftovers();
  // Replies and watch deliveries under `_INBOX_<agentId>`: the only inbox the agent's NATS user may subscribe to.
  const nc = await connectBus({
    servers: cfg.nats,
    name: `capa-agent-${cfg.agentId}`,
    inboxPrefix: inboxPrefixFor(cfg.agentId),
    asyncTraces: false,
    ...cfg.natsAuth,
  });
  const metrics = config.metrics ?? new AgentMetrics();
  const agent = new Agent(cfg, host, inventory, nc, logger.child({ agentId: cfg.agentId }), drivers, metrics);
  try {
    await agent.start();
  } catch (err) {
    await nc.close();
    throw err;
  }
  return {
    agentId: cfg.agentId,
    advert: () => agent.advertiser.current(),
    prices: () => agent.prices(),
    setPrices: (prices) => agent.setPrices(prices),
    stop: () => agent.stop(),
  };
}

class Agent {
  readonly advertiser: Advertiser;
  private readonly bootId = randomUUID();
  private readonly outbox: Outbox;
  private readonly reporter: Reporter;
  private readonly records: TaskRecords;
  private readonly watcher: AssignmentsWatcher;
  private desired: TaskAssignment[] = [];
  /** Until the desired state has been read once, reconciling could forget finished tasks it still lists. */
  private desiredKnown = false;
  private readonly running = new Map<string, RunningTask>();
  /** Last contact with the scheduler's state (assignment reads) and with NATS, for self-fencing (fence.ts). */
  private readonly contact = new Fence(() => Date.now());
  private readonly fenceTimes: FenceTimes;
  /** A round trip to the NATS server is in flight (one at a time: a dead link must not pile them up). */
  private pinging = false;
  private readonly finished = new Map<string, Finished>();
  private gpus: Gpu[];
  private tickTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private refreshFailures = 0;
  private lastResyncMs = 0;
  private stopping: Promise<void> | undefined;
  private priceControl: { stop(): void } | undefined;
  private readonly checkpoints: CheckpointTransfer;
  private readonly labels: { agent_id: string; region: string };
  private readonly detachMetrics: () => void;

  constructor(
    private readonly cfg: ResolvedAgentConfig,
    private readonly host: HostFacts,
    private readonly inventory: GpuInventory,
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
    private readonly drivers: Drivers,
    private readonly metrics: AgentMetrics,
  ) {
    this.gpus = inventory.gpus;
    this.fenceTimes = {
      partitionGraceMs: cfg.partitionGraceMs,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      // The scheduler's timeout for this agent is its advert TTL (unless its --agent-timeout overrides it).
      agentTimeoutMs: cfg.advertTtlSeconds * 1000,
      busClock: cfg.fenceOnDisconnect,
    };
    const js = jetstream(nc);
    const labels = { agent_id: cfg.agentId, region: cfg.region };
    this.labels = labels;
    this.outbox = new Outbox(js, {
      logger,
      onAcked: (kind, lagMs) => metrics.reportLag.observe({ ...labels, kind }, lagMs / 1000),
      onRetry: (kind) => metrics.publishRetries.inc({ ...labels, kind }),
    });
    this.detachMetrics = metrics.attach({
      agentId: cfg.agentId,
      region: cfg.region,
      gpus: () => this.gpuTelemetry(),
      runningTasks: () => this.running.size,
      finishedTasks: () => this.finished.size,
      queuedReports: () => this.outbox.queued(),
    });
    metrics.followConnection(nc);
    this.reporter = new Reporter(this.outbox, { agentId: cfg.agentId, bootId: this.bootId });
    this.records = new TaskRecords(cfg.workDir);
    this.checkpoints = new CheckpointTransfer({ nc, region: cfg.region, agentId: cfg.agentId });
    this.advertiser = new Advertiser(
      { publisher: nc, region: cfg.region, agentId: cfg.agentId, advertIntervalMs: cfg.advertIntervalMs, logger },
      () => this.advertBody(),
    );
    this.watcher = new AssignmentsWatcher(
      // Direct get: the key travels in the request subject, which the agent's permissions allow only for its own key.
      () => new Kvm(js).open(BUCKETS.allocs, { allow_direct: true }),
      cfg.agentId,
      (value) => this.onAssignments(value),
      logger,
      () => this.contact.state.contact(),
    );
  }

  async start(): Promise<void> {
    for (const report of recoverTaskRecords(this.records, this.reporter, this.logger)) {
      this.finished.set(report.taskId, { report, sentAtMs: 0 });
    }
    this.advertiser.start();
    this.priceControl = servePriceControl(this.nc, this.cfg.region, this.cfg.agentId, this, this.logger);
    this.advertiser.heartbeat(this.heartbeatBody());
    await this.watcher.start();
    this.tickTimer = setInterval(() => void this.tick(), this.cfg.heartbeatIntervalMs);
    void this.followConnection();
    const priced = new Set(this.cfg.prices.map((p) => p.gpuModel));
    const unpriced = [...new Set(this.gpus.map((g) => g.model))].filter((m) => !priced.has(m));
    if (unpriced.length > 0) this.logger.warn({ models: unpriced }, "GPU models without a price (--price)");
    const killGraceMs = DEFAULT_KILL_GRACE_SECONDS * 1000;
    this.logger.info(
      {
        region: this.cfg.region,
        gpus: this.gpus.length,
        source: this.inventory.source,
        bucket: BUCKETS.allocs,
        // What an operator checks against the scheduler's --partition-grace and --agent-timeout (fence.ts).
        fence: {
          partitionGraceS: this.cfg.partitionGraceMs / 1000,
          agentTimeoutS: this.fenceTimes.agentTimeoutMs / 1000,
          killGraceS: DEFAULT_KILL_GRACE_SECONDS,
          afterStateSilenceS: fenceAfterMs(this.fenceTimes, killGraceMs, "state") / 1000,
          ...(this.cfg.fenceOnDisconnect && {
            afterNatsSilenceS: fenceAfterMs(this.fenceTimes, killGraceMs, "bus") / 1000,
          }),
        },
      },
      "agent started",
    );
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  prices(): GpuPrice[] {
    return this.cfg.prices.map((p) => ({ ...p }));
  }

  /** New prices apply to later placements only; the scheduler locked running allocations' prices at placement. */
  setPrices(prices: GpuPrice[]): void {
    const models = new Set(prices.map((p) => p.gpuModel));
    if (models.size !== prices.length) throw new AgentConfigError("prices: a model is priced twice");
    if (
      prices.some(
        (p) => !Number.isSafeInteger(p.onDemandPerHour) || p.onDemandPerHour < 0 || p.interruptiblePerHour < 0,
      )
    )
      throw new AgentConfigError("prices: must be non-negative integer micros");
    this.cfg.prices = prices.map((p) => ({ ...p }));
    if (!this.stopping) this.advertiser.publishAdvert();
  }

  // ---- state → messages ---------------------------------------------------------------------------------------

  private advertBody(): AdvertBody {
    const cfg = this.cfg;
    const host = this.host;
    const labels = { ...cfg.labels };
    if (this.inventory.simulated) labels[SIMULATED_LABEL] = "true";
    return {
      agentId: cfg.agentId,
      region: cfg.region,
      zone: cfg.zone,
      hostname: host.hostname,
      gpus: this.gpuTelemetry(),
      cpuCores: host.cpuCores,
      memoryMib: host.memoryMib,
      labels,
      fabricDomain: cfg.fabricDomain,
      prices: cfg.prices,
      simulated: this.inventory.simulated,
      ttlSeconds: cfg.advertTtlSeconds,
      version: AGENT_VERSION,
      bootId: this.bootId,
      provider: cfg.provider,
      residency: residencyOfRegion(cfg.region),
      reliability: cfg.reliability,
      drivers: this.drivers.names(),
    };
  }

  private busyGpus(): Set<number> {
    const busy = new Set<number>();
    for (const t of this.running.values()) for (const i of t.assignment.gpuIndices) busy.add(i);
    return busy;
  }

  /**
   * Real GPUs report what nvidia-smi measured; simulated ones look fully used while a task holds them (all of the
   * compute, most of the memory, a warm die) and idle otherwise, so dashboards over a simulated fleet move.
   */
  private gpuTelemetry(): Gpu[] {
    if (!this.inventory.simulated) return this.gpus.map((g) => ({ ...g }));
    const busy = this.busyGpus();
    return this.gpus.map((g) =>
      busy.has(g.index)
        ? { ...g, utilizationPct: 100, memoryUsedMib: Math.round(g.vramMib * 0.8), temperatureC: SIM_BUSY_C }
        : { ...g, utilizationPct: 0, memoryUsedMib: 0, temperatureC: SIM_IDLE_C },
    );
  }

  private heartbeatBody() {
    const busy = this.busyGpus();
    return {
      agentId: this.cfg.agentId,
      region: this.cfg.region,
      bootId: this.bootId,
      gpus: this.gpuTelemetry(),
      runningTaskIds: [...this.running.keys()],
      freeGpus: this.gpus.filter((g) => g.health !== "failed" && !busy.has(g.index)).length,
    };
  }

  // ---- loops --------------------------------------------------------------------------------------------------

  private async tick(): Promise<void> {
    try {
      await this.tickOnce();
    } catch (err) {
      this.logger.error({ err }, "agent tick failed");
    }
  }

  private async tickOnce(): Promise<void> {
    if (this.stopping) return;
    await this.refreshGpus();
    if (this.stopping) return;
    this.advertiser.heartbeat(this.heartbeatBody());
    this.advertiser.publishIfChanged();
    this.ping();
    this.fence();
    const now = Date.now();
    if (now - this.lastResyncMs >= this.cfg.advertIntervalMs) {
      this.lastResyncMs = now;
      void this.watcher.resync();
    }
    this.reconcile();
  }

  /**
   * nvidia-smi again for telemetry and health. A failure keeps the last view, but repeated failures mark every GPU
   * degraded: a driver that stops answering is how a GPU falling off the bus often shows, and the scheduler should
   * stop placing work here until nvidia-smi answers again.
   */
  private async refreshGpus(): Promise<void> {
    if (this.inventory.source !== "nvidia-smi" || this.refreshing) return;
    this.refreshing = true;
    try {
      this.gpus = await discoverGpus(this.cfg.nvidiaSmi);
      this.refreshFailures = 0;
    } catch (err) {
      this.refreshFailures++;
      this.logger.warn({ err, failures: this.refreshFailures }, "GPU refresh failed; keeping the last known GPUs");
      if (this.refreshFailures >= DEGRADE_AFTER_FAILURES) {
        this.gpus = this.gpus.map((g) => (g.health === "ok" ? { ...g, health: "degraded" } : g));
      }
    } finally {
      this.refreshing = false;
    }
  }

  /**
   * A round trip to the NATS server after this tick's heartbeat: its pong says the heartbeat reached the server, so
   * it is dated when the ping was sent (fence.ts). While disconnected it waits for the reconnect.
   */
  private ping(): void {
    if (this.pinging || this.nc.isClosed()) return;
    this.pinging = true;
    const sentAtMs = Date.now();
    this.nc
      .flush()
      .then(() => this.contact.bus.contact(sentAtMs))
      .catch(() => undefined)
      .finally(() => {
        this.pinging = false;
      });
  }

  /**
   * Stops (SIGTERM → kill grace → SIGKILL) each task out of contact with the scheduler for nearly as long as the
   * scheduler waits before re-placing it, reported `lost` once the reports get through (fence.ts).
   */
  private fence(): void {
    const graces = new Map(
      [...this.running]
        .filter(([, t]) => !t.view().stopping)
        .map(([id, t]) => [id, (t.assignment.template.killGraceSeconds || DEFAULT_KILL_GRACE_SECONDS) * 1000]),
    );
    const due = this.contact.due(graces, this.fenceTimes);
    if (due.length === 0) return;
    this.logger.warn(
      { fenced: due.map((d) => ({ taskId: d.taskId, cause: d.cause, silentS: Math.round(d.silentMs / 1000) })) },
      "out of contact with the scheduler: stopping tasks before they are re-placed",
    );
    for (const d of due) {
      const silentS = Math.round(d.silentMs / 1000);
      const reason =
        d.cause === "state"
          ? `fenced: no contact with the scheduler's state for ${silentS} s (partition grace ${this.cfg.partitionGraceMs / 1000} s)`
          : `fenced: no round trip to NATS for ${silentS} s (agent timeout ${this.fenceTimes.agentTimeoutMs / 1000} s)`;
      this.running.get(d.taskId)?.stop(reason, "lost");
    }
  }

  /** After a reconnect the scheduler may have expired us: advertise at once and re-read the desired state. */
  private async followConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (this.stopping) return;
      if (status.type === "disconnect") this.logger.warn("disconnected from NATS");
      if (status.type === "reconnect") {
        this.logger.info("reconnected to NATS");
        this.advertiser.publishAdvert();
        void this.watcher.resync();
      }
    }
  }

  // ---- desired vs running ------------------------------------------------------------------------------------------

  private onAssignments(value: { agentId: string; tasks: TaskAssignment[] } | undefined): void {
    if (value?.agentId && value.agentId !== this.cfg.agentId) {
      this.logger.error({ for: value.agentId }, "assignments addressed to another agent; ignored");
      return;
    }
    const tasks = value?.tasks ?? [];
    // Ids become subject tokens; one bad id must not stop the agent from serving the rest.
    const bad = tasks.filter((t) => !TOKEN.test(t.taskId));
    if (bad.length > 0) this.logger.error({ taskIds: bad.map((t) => t.taskId) }, "invalid task ids ignored");
    this.desired = bad.length > 0 ? tasks.filter((t) => TOKEN.test(t.taskId)) : tasks;
    this.desiredKnown = true;
    this.reconcile();
  }

  private reconcile(): void {
    if (this.stopping || !this.desiredKnown) return;
    const actions = reconcile({
      desired: this.desired,
      running: [...this.running.values()].map((t) => t.view()),
      finished: [...this.finished.values()].map((f) => ({ ...f.report })),
      gpus: this.gpus,
    });
    for (const action of actions) {
      try {
        this.apply(action);
      } catch (err) {
        this.logger.error({ err, action: action.type }, "reconcile action failed; retried on the next pass");
      }
    }
  }

  private apply(action: ReconcileAction): void {
    const now = Date.now();
    switch (action.type) {
      case "start":
        this.startTask(action.assignment);
        break;
      case "stop":
        this.logger.info({ taskId: action.taskId, reason: action.reason }, "stopping task");
        this.running.get(action.taskId)?.stop(action.reason);
        break;
      case "reject":
      case "cancel-unstarted": {
        const a = action.assignment;
        const state = action.type === "reject" ? "rejected" : "cancelled";
        this.logger.warn({ taskId: a.taskId, state, message: action.message }, "task not started");
        const report = this.reporter.status(a, state, { finishedAtMs: now, message: action.message });
        this.metrics.tasksFinished.inc({ ...this.labels, state });
        this.remember(report);
        break;
      }
      case "republish": {
        const f = this.finished.get(action.taskId);
        // Skip while the first copy is still queued (NATS down): re-sending would only grow the queue.
        if (!f || now - f.sentAtMs < this.cfg.republishIntervalMs || this.outbox.busy(action.taskId)) break;
        f.sentAtMs = now;
        this.reporter.send(f.report);
        break;
      }
      case "forget":
        this.finished.delete(action.taskId);
        this.records.remove(action.taskId);
        break;
      case "wait":
        this.logger.debug({ taskId: action.taskId, reason: action.reason }, "task waits");
        break;
    }
  }

  private startTask(a: TaskAssignment): void {
    this.logger.info({ taskId: a.taskId, epoch: a.epoch, gpus: a.gpuIndices, command: a.template.command }, "start");
    const probe = replicaProbeSpec(a);
    const task = new RunningTask(a, {
      ...(probe && {
        prober: new ReplicaProber(a, probe, {
          agentId: this.cfg.agentId,
          host: this.cfg.serviceHost,
          publisher: this.nc,
          logger: this.logger,
        }),
      }),
      agentId: this.cfg.agentId,
      bootId: this.bootId,
      workDir: this.cfg.workDir,
      inheritEnv: this.cfg.inheritEnv,
      drivers: this.drivers,
      usageIntervalMs: this.cfg.usageIntervalMs,
      storeCheckpoint: (t, found) => this.checkpoints.store(t, found),
      fetchCheckpoint: (t, checkpoint, intoDir) => this.checkpoints.fetch(t, checkpoint, intoDir),
      reporter: this.reporter,
      records: this.records,
      logger: this.logger,
    });
    this.running.set(a.taskId, task);
    this.finished.delete(a.taskId);
    this.metrics.tasksStarted.inc(this.labels);
    void task.done.then((report) => {
      this.metrics.tasksFinished.inc({ ...this.labels, state: report.state });
      this.running.delete(a.taskId);
      this.finished.set(a.taskId, { report, sentAtMs: Date.now() });
      // Freed GPUs may let a waiting task start.
      this.reconcile();
    });
  }

  /** Keeps a final report in memory and on disk, so the task is never started again while it is listed. */
  private remember(report: TaskStatusReport): void {
    this.finished.set(report.taskId, { report, sentAtMs: Date.now() });
    try {
      this.records.save({
        taskId: report.taskId,
        jobId: report.jobId,
        epoch: report.epoch,
        bootId: this.bootId,
        gpuIndices: [],
        final: report,
      });
    } catch (err) {
      this.logger.error({ err, taskId: report.taskId }, "cannot save task record");
    }
  }

  private async shutdown(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.priceControl?.stop();
    this.advertiser.stop();
    await this.watcher.stop();
    const tasks = [...this.running.values()];
    for (const t of tasks) t.stop("agent shutting down", "preempted");
    const graceMs =
      Math.max(0, ...tasks.map((t) => t.assignment.template.killGraceSeconds || DEFAULT_KILL_GRACE_SECONDS)) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const t of tasks) t.kill();
        resolve();
      }, graceMs + 2_000);
    });
    const allDone = Promise.all(tasks.map((t) => t.done));
    await Promise.race([allDone, deadline]);
    clearTimeout(timer);
    // After a SIGKILL the final reports follow within moments; give them a bounded chance to be queued.
    await Promise.race([allDone, new Promise((r) => setTimeout(r, 2_000).unref())]);
    const flushed = await this.outbox.drain(SHUTDOWN_FLUSH_MS);
    if (!flushed) this.logger.warn("some task reports were not acknowledged before shutdown");
    this.outbox.close();
    this.records.close();
    await this.nc.close();
    this.detachMetrics();
    this.logger.info("agent stopped");
  }
}
