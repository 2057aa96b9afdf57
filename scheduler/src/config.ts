/** What `startScheduler` accepts, and the defaults it fills in. */

import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { DEFAULT_PARTITION_GRACE_MS } from "@capa/domain";
import { type Logger, pino } from "pino";
import { DEFAULT_RETENTION_MS } from "./retention/policy.js";
import { DEFAULT_RETIRED_CACHE_SIZE } from "./store/job-repo.js";
import { DEFAULT_STATUS_COALESCE_MS } from "./tasks/status-consumer.js";

export interface SchedulerConfig {
  /** NATS server URL(s); comma-separated accepted. */
  natsUrl: string;
  /**
   * The scheduler's NATS nkey seed (`SU...`, `<auth-dir>/scheduler.nk`): the one user with full access when the
   * server runs with capa's generated authorization. Unset: connect without credentials (a server without auth).
   */
  natsNkeySeed?: string;
  /**
   * Highest price per GPU-hour (micro-dollars, on-demand and interruptible) an advert may carry; an advert above it
   * is refused (`price-above-ceiling`). Default 100 000 000 ($100/GPU-h).
   */
  maxAdvertPricePerGpuHour?: number;
  /** gRPC listen address "host:port"; port 0 picks a free port. Default "127.0.0.1:50051". */
  grpcAddress?: string;
  /**
   * The gRPC address other replicas reach this one at, written into the leader lease so followers can forward
   * writes to the leader (`--advertise-address`). Default: the bound address, a wildcard host replaced by the
   * host name.
   */
  advertiseAddress?: string;
  /** Identity in the leader lease and logs. Default `<hostname>-<pid>-<random>`. */
  schedulerId?: string;
  /**
   * An agent silent this long is lost. Default: the agent's advertised `ttl_seconds` (30 s when it sends 0).
   * Tests set it low.
   */
  agentTimeoutMs?: number;
  /**
   * When every agent of a region is silent at once (a cut link rather than dead machines), how long they are held
   * before being lost and their tasks re-placed (`--partition-grace`). Default 120 000 ms.
   */
  partitionGraceMs?: number;
  /** How often agent liveness is checked. Default min(1000, timeout/4). */
  livenessIntervalMs?: number;
  /**
   * Leader lease length; renewed every third of it. Default 8 000 ms: a dead leader is replaced within 8 s of
   * its last renewal (the fault suite's failover goal is 10 s).
   */
  leaseTtlMs?: number;
  /**
   * How long SubmitJob's normal path (request record, admission, job record) may take before the submission is
   * made durable in an intake stream instead and acknowledged from there (scheduler/src/intake). Default 1 200 ms:
   * a stream that lost its Raft leader answers nothing for 4–9 s (nats-server's election timeout).
   */
  submitStallBudgetMs?: number;
  /** Serve Prometheus metrics on http://metricsHost:metricsPort/metrics (port 0 = free). Off when undefined. */
  metricsPort?: number;
  metricsHost?: string;
  /**
   * Serve the HTTP edge (health, the console, webhooks, JSON reads; every route but /healthz and the console's
   * static shell needs an API key) on http://httpHost:httpPort (port 0 = free). Off when undefined. HTTPS with the
   * gRPC certificate when TLS is configured.
   */
  httpPort?: number;
  httpHost?: string;
  /** After a job is final, how long StreamLogs(follow) waits for late log chunks before it ends. Default 500 ms. */
  logDrainGraceMs?: number;
  /**
   * Largest checkpoint copy (a tar of the entry) the checkpoint store takes, so a task can resume on another
   * agent; a bigger one stays on its agent (`copy: too-large`). Default 64 MiB.
   */
  checkpointCopyMaxBytes?: number;
  /** Delay before re-planning after a commit conflict or a rejected assignment. Default 250 ms. */
  retryDelayMs?: number;
  /**
   * Longest time a task's `starting` report waits for the task's next report, so both are folded into one job
   * write (`starting` changes no job state; running and final reports are never held). 0 = no wait. Default 1 s.
   */
  statusCoalesceMs?: number;
  /**
   * JetStream replicas of capa's buckets and streams (`--js-replicas`). Default: 3 when the NATS cluster the
   * scheduler connects to (the home region) has at least 3 servers, else 1. They are placed in that cluster.
   */
  replicas?: number;
  /** Platform fee in basis points of each charge (1000 = 10 %), rounded down. Default 1000. */
  feeBasisPoints?: number;
  /** Where the scheduler keeps files: the receipt signing key. Default `$CAPA_DATA_DIR` or `~/.capa/scheduler`. */
  dataDir?: string;
  /**
   * Ed25519 receipt signing key (PKCS#8 PEM), created on first start (mode 0600, public key at `<path>.pub`).
   * Replicas must share one key, or receipts verify only against the key of the replica that signed them.
   * Default `<dataDir>/receipt-signing-key.pem`.
   */
  receiptKeyPath?: string;
  /** How often running jobs with a budget are re-checked between usage reports. Default 5 000 ms. */
  budgetCheckIntervalMs?: number;
  /**
   * An admin API key (`capa_<keyId>_<secret>`, e.g. from `capa auth new-token`) registered at start, for
   * deployments that provision the first credential themselves. Without it, a scheduler that finds no admin key
   * makes one and writes it to `<dataDir>/admin.credentials` (mode 0600). Default `$CAPA_BOOTSTRAP_TOKEN`.
   */
  bootstrapToken?: string;
  /** Serve gRPC over TLS with this certificate and key (PEM files); mTLS when `tlsClientCaFile` is set too. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCaFile?: string;
  /** Highest priority a tenant without its own ceiling may submit. Default 100. */
  defaultMaxPriority?: number;
  /** Max price per GPU-hour given to jobs that name none, for tenants without their own. Default $100. */
  defaultMaxPricePerGpuHour?: number;
  /**
   * How long a final job (with its explanation and request record) is kept after it finished; older ones are
   * removed by the leader's retention sweep. Default 30 days.
   */
  retentionMs?: number;
  /** How often the retention sweep runs. Default 10 minutes. */
  retentionSweepIntervalMs?: number;
  /** At most this many jobs removed per sweep. Default 1 000. */
  retentionBatch?: number;
  /** Wall-clock limit of one OperatorService.Replay (worker thread). Default 120 s. */
  replayTimeoutMs?: number;
  /**
   * Retired jobs (final, no allocation left) kept decoded in memory, most recently used; older ones are read
   * from KV when asked for. Default 2 000. Active jobs are always in memory.
   */
  retiredJobCacheSize?: number;
  logger?: Logger;
  /** Injected clock (tests). Default Date.now. */
  now?: () => number;
}

export interface ResolvedConfig {
  natsUrl: string;
  natsNkeySeed: string | undefined;
  maxAdvertPricePerGpuHour: number;
  grpcAddress: string;
  advertiseAddress: string | undefined;
  schedulerId: string;
  agentTimeoutMs: number | undefined;
  livenessIntervalMs: number;
  partitionGraceMs: number;
  leaseTtlMs: number;
  submitStallBudgetMs: number;
  metricsPort: number | undefined;
  metricsHost: string;
  httpPort: number | undefined;
  httpHost: string;
  logDrainGraceMs: number;
  checkpointCopyMaxBytes: number;
  retryDelayMs: number;
  statusCoalesceMs: number;
  /** undefined = from the connected cluster's size (`storeLayout`). */
  replicas: number | undefined;
  feeBasisPoints: number;
  receiptKeyPath: string;
  budgetCheckIntervalMs: number;
  dataDir: string;
  bootstrapToken: string | undefined;
  tls: { certFile: string; keyFile: string; clientCaFile?: string } | undefined;
  defaultMaxPriority: number;
  defaultMaxPricePerGpuHour: number;
  retentionMs: number;
  retentionSweepIntervalMs: number;
  retentionBatch: number;
  replayTimeoutMs: number;
  retiredJobCacheSize: number;
  logger: Logger;
  now: () => number;
}

export const DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051";
export const DEFAULT_AGENT_TTL_MS = 30_000;
export const DEFAULT_LEASE_TTL_MS = 8_000;
export const DEFAULT_SUBMIT_STALL_BUDGET_MS = 1_200;
export const DEFAULT_MAX_ADVERT_PRICE_PER_GPU_HOUR = 100_000_000;

export function resolveConfig(config: SchedulerConfig): ResolvedConfig {
  if (!config.natsUrl) throw new Error("natsUrl is required");
  const agentTimeoutMs = positive(config.agentTimeoutMs, "agentTimeoutMs");
  const dataDir = config.dataDir ?? process.env.CAPA_DATA_DIR ?? join(homedir(), ".capa", "scheduler");
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined))
    throw new Error("tlsCertFile and tlsKeyFile go together");
  if (config.tlsClientCaFile !== undefined && config.tlsCertFile === undefined)
    throw new Error("tlsClientCaFile (mTLS) needs tlsCertFile and tlsKeyFile");
  const defaultMaxPriority = config.defaultMaxPriority ?? 100;
  if (!Number.isInteger(defaultMaxPriority) || Math.abs(defaultMaxPriority) > 1000)
    throw new Error(`defaultMaxPriority must be an integer in -1000..1000, got ${defaultMaxPriority}`);
  const defaultMaxPricePerGpuHour = config.defaultMaxPricePerGpuHour ?? 100_000_000;
  if (!Number.isSafeInteger(defaultMaxPricePerGpuHour) || defaultMaxPricePerGpuHour <= 0)
    throw new Error(`defaultMaxPricePerGpuHour must be a positive integer of micros, got ${defaultMaxPricePerGpuHour}`);
  return {
    natsUrl: config.natsUrl,
    natsNkeySeed: config.natsNkeySeed,
    maxAdvertPricePerGpuHour: priceCeiling(config.maxAdvertPricePerGpuHour),
    grpcAddress: config.grpcAddress ?? DEFAULT_GRPC_ADDRESS,
    advertiseAddress: config.advertiseAddress,
    schedulerId: config.schedulerId ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    agentTimeoutMs,
    livenessIntervalMs:
      positive(config.livenessIntervalMs, "livenessIntervalMs") ??
      Math.max(50, Math.min(1000, Math.floor((agentTimeoutMs ?? DEFAULT_AGENT_TTL_MS) / 4))),
    partitionGraceMs: positive(config.partitionGraceMs, "partitionGraceMs") ?? DEFAULT_PARTITION_GRACE_MS,
    leaseTtlMs: positive(config.leaseTtlMs, "leaseTtlMs") ?? DEFAULT_LEASE_TTL_MS,
    submitStallBudgetMs: positive(config.submitStallBudgetMs, "submitStallBudgetMs") ?? DEFAULT_SUBMIT_STALL_BUDGET_MS,
    metricsPort: config.metricsPort,
    metricsHost: config.metricsHost ?? "127.0.0.1",
    httpPort: config.httpPort,
    httpHost: config.httpHost ?? "127.0.0.1",
    logDrainGraceMs: config.logDrainGraceMs ?? 500,
    checkpointCopyMaxBytes: positive(config.checkpointCopyMaxBytes, "checkpointCopyMaxBytes") ?? 64 * 1024 * 1024,
    retryDelayMs: config.retryDelayMs ?? 250,
    statusCoalesceMs: config.statusCoalesceMs ?? DEFAULT_STATUS_COALESCE_MS,
    replicas: config.replicas,
    feeBasisPoints: feeBasisPoints(config.feeBasisPoints),
    receiptKeyPath: config.receiptKeyPath ?? join(dataDir, "receipt-signing-key.pem"),
    budgetCheckIntervalMs: positive(config.budgetCheckIntervalMs, "budgetCheckIntervalMs") ?? 5_000,
    dataDir,
    bootstrapToken: config.bootstrapToken ?? (process.env.CAPA_BOOTSTRAP_TOKEN || undefined),
    tls:
      config.tlsCertFile && config.tlsKeyFile
        ? {
            certFile: config.tlsCertFile,
            keyFile: config.tlsKeyFile,
            ...(config.tlsClientCaFile ? { clientCaFile: config.tlsClientCaFile } : {}),
          }
        : undefined,
    defaultMaxPriority,
    defaultMaxPricePerGpuHour,
    retentionMs: positive(config.retentionMs, "retentionMs") ?? DEFAULT_RETENTION_MS,
    retentionSweepIntervalMs: positive(config.retentionSweepIntervalMs, "retentionSweepIntervalMs") ?? 600_000,
    retentionBatch: positive(config.retentionBatch, "retentionBatch") ?? 1_000,
    replayTimeoutMs: positive(config.replayTimeoutMs, "replayTimeoutMs") ?? 120_000,
    retiredJobCacheSize: positive(config.retiredJobCacheSize, "retiredJobCacheSize") ?? DEFAULT_RETIRED_CACHE_SIZE,
    logger: config.logger ?? pino({ name: "capa-scheduler", level: process.env.CAPA_LOG_LEVEL ?? "info" }),
    now: config.now ?? Date.now,
  };
}

function positive(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of ms, got ${value}`);
  return value;
}

function priceCeiling(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_ADVERT_PRICE_PER_GPU_HOUR;
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`maxAdvertPricePerGpuHour must be a positive integer of micro-dollars, got ${value}`);
  return value;
}

function feeBasisPoints(value: number | undefined): number {
  if (value === undefined) return 1_000;
  if (!Number.isInteger(value) || value < 0 || value > 10_000)
    throw new Error(`feeBasisPoints must be an integer in 0..10000, got ${value}`);
  return value;
}
