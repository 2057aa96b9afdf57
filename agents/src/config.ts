/**
 * Agent configuration: the typed `AgentConfig` that `startAgent` takes, its defaults, and the parsers the CLI uses
 * to build one from `capa agent` flags. Every parse error names the flag it came from.
 */
import { hostname as osHostname, tmpdir } from "node:os";
import { join } from "node:path";
import { assertToken } from "@capa/bus";
import { DEFAULT_PARTITION_GRACE_MS, type GpuPrice, parseGpuSpec, parseUsd } from "@capa/domain";
import type { Logger } from "pino";
import { AgentConfigError } from "./errors.js";
import type { NvidiaSmiOptions } from "./gpu/discover.js";
import type { AgentMetrics } from "./metrics/agent-metrics.js";

export interface AgentConfig {
  /** NATS URL(s); a comma-separated string is accepted, as in CAPA_NATS_URL. */
  nats: string | string[];
  /**
   * NATS credentials. `nkeySeed` is the agent's own nkey seed from `capa agent enroll`: with capa's generated
   * server authorization it may publish only its own subjects and read only its own assignments.
   */
  natsAuth?: NatsAuth;
  /** Default: derived from the hostname, made subject-token safe. */
  agentId?: string;
  region: string;
  /** Default `<region>-a`. */
  zone?: string;
  labels?: Record<string, string>;
  provider?: string;
  fabricDomain?: string;
  /** Price per GPU-hour per model, integer micros. */
  prices?: GpuPrice[];
  /** "4xH100-80GB,2xA100-40GB": simulate GPUs instead of running nvidia-smi. */
  simulateGpus?: string;
  /** Tasks get `<workDir>/tasks/<taskId>` unless their template names a dir. Default `<tmpdir>/capa-agent-<id>`. */
  workDir?: string;
  advertIntervalMs?: number;
  heartbeatIntervalMs?: number;
  advertTtlSeconds?: number;
  /** Usage reports while a task runs. */
  usageIntervalMs?: number;
  /**
   * The scheduler's partition grace (its `--partition-grace`; default DEFAULT_PARTITION_GRACE_MS): out of contact
   * with the scheduler this long, the agent stops its tasks before the scheduler re-places them (fence.ts).
   */
  partitionGraceMs?: number;
  /** Also fence on the bus clock: no NATS round trip for about the advert TTL (fence.ts). Default false. */
  fenceOnDisconnect?: boolean;
  /** Re-publish a final status still listed in the desired state at most this often. Default: advert interval. */
  republishIntervalMs?: number;
  nvidiaSmi?: NvidiaSmiOptions;
  /** 0..1, advertised as-is (the scheduler may keep its own measure). */
  reliability?: number;
  /** Agent environment variables passed through to tasks; everything else (CAPA_TOKEN, NATS creds) stays out. */
  inheritEnv?: string[];
  /** Address service replicas are reached at (their endpoint host; they get `$PORT`). Default 127.0.0.1. */
  serviceHost?: string;
  /**
   * The container driver's CLI (docker-compatible): "podman", "docker" or a path; "auto" = podman, else docker,
   * whichever answers `version`; "none" (default for embedded agents) = no container driver.
   */
  containerRuntime?: string;
  /** How containers get their GPUs: "cdi" (`--device nvidia.com/gpu=N`) or "env" (NVIDIA_VISIBLE_DEVICES). Default:
   * "cdi" for real GPUs, "env" for simulated ones (they have no CDI spec). */
  gpuMode?: "cdi" | "env";
  /** pino logger; pass `pino({ level: "silent" })` to silence. */
  logger?: Logger;
  /** Metrics to record into (one may be shared by several agents of a process); default: the agent's own. */
  metrics?: AgentMetrics;
}

export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
  nkeySeed?: string;
}

export const AGENT_VERSION = "0.1.0";

export const AGENT_DEFAULTS = {
  advertIntervalMs: 10_000,
  heartbeatIntervalMs: 2_000,
  /**
   * Default advert TTL in heartbeats: the scheduler declares the agent lost after this many missed heartbeats
   * (6 s at the 2 s default), so a dead agent's tasks are re-placed within seconds, while one late heartbeat
   * (GC pause, NATS reconnect) is not a loss.
   */
  advertTtlHeartbeats: 3,
  /** ...but never under 3 s by default: a busy host's event loop can stall for a second. */
  minAdvertTtlSeconds: 3,
  usageIntervalMs: 30_000,
  reliability: 1,
  inheritEnv: ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "LD_LIBRARY_PATH"],
} as const;

/** AgentConfig with every default applied and validated; what the rest of the agent reads. */
export interface ResolvedAgentConfig {
  nats: string | string[];
  natsAuth: NatsAuth;
  agentId: string;
  region: string;
  zone: string;
  labels: Record<string, string>;
  provider: string;
  fabricDomain: string;
  prices: GpuPrice[];
  simulateGpus: string | undefined;
  workDir: string;
  advertIntervalMs: number;
  heartbeatIntervalMs: number;
  advertTtlSeconds: number;
  usageIntervalMs: number;
  partitionGraceMs: number;
  fenceOnDisconnect: boolean;
  republishIntervalMs: number;
  nvidiaSmi: NvidiaSmiOptions;
  reliability: number;
  inheritEnv: string[];
  serviceHost: string;
  containerRuntime: string;
  gpuMode: "cdi" | "env" | undefined;
}

/** "GPU-Box 7.example.com" → "gpu-box-7-example-com": a valid subject token of at most 64 characters. */
export function defaultAgentId(hostname: string = osHostname()): string {
  const id = hostname
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
  return id || "agent";
}

function token(value: string, what: string): string {
  try {
    return assertToken(value, what);
  } catch (cause) {
    throw new AgentConfigError((cause as Error).message, { cause });
  }
}

function positive(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new AgentConfigError(`${what} must be positive, got ${value}`);
  return value;
}

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;

function checkLabels(labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) throw new AgentConfigError(`--label: invalid key ${JSON.stringify(key)}`);
    if (value.length > 256 || /[\u0000-\u001f]/.test(value)) {
      throw new AgentConfigError(`--label: value of ${key} must be at most 256 printable characters`);
    }
  }
  return labels;
}

export function resolveAgentConfig(config: AgentConfig, hostname: string = osHostname()): ResolvedAgentConfig {
  const agentId = token(config.agentId ?? defaultAgentId(hostname), "agent id");
  const region = token(config.region, "region");
  const advertIntervalMs = positive(config.advertIntervalMs ?? AGENT_DEFAULTS.advertIntervalMs, "advert interval");
  const heartbeatIntervalMs = positive(
    config.heartbeatIntervalMs ?? AGENT_DEFAULTS.heartbeatIntervalMs,
    "heartbeat interval",
  );
  const advertTtlSeconds = positive(
    config.advertTtlSeconds ??
      Math.max(
        AGENT_DEFAULTS.minAdvertTtlSeconds,
        Math.ceil((AGENT_DEFAULTS.advertTtlHeartbeats * heartbeatIntervalMs) / 1000),
      ),
    "advert TTL",
  );
  // A TTL shorter than the heartbeat period would make the scheduler drop a healthy agent between heartbeats.
  if (advertTtlSeconds * 1000 <= heartbeatIntervalMs) {
    throw new AgentConfigError(`advert TTL (${advertTtlSeconds} s) must be longer than the heartbeat interval`);
  }
  const prices = config.prices ?? [];
  const models = new Set<string>();
  for (const p of prices) {
    if (models.has(p.gpuModel)) throw new AgentConfigError(`--price: ${p.gpuModel} is priced twice`);
    models.add(p.gpuModel);
  }
  const reliability = config.reliability ?? AGENT_DEFAULTS.reliability;
  if (!(reliability >= 0 && reliability <= 1)) throw new AgentConfigError(`reliability must be 0..1`);
  return {
    nats: config.nats,
    natsAuth: config.natsAuth ?? {},
    agentId,
    region,
    zone: token(config.zone ?? `${region}-a`, "zone"),
    labels: checkLabels({ ...(config.labels ?? {}) }),
    provider: config.provider ?? "",
    fabricDomain: config.fabricDomain ?? "",
    prices: prices.map((p) => ({ ...p })),
    simulateGpus: config.simulateGpus || undefined,
    workDir: config.workDir ?? join(tmpdir(), `capa-agent-${agentId}`),
    advertIntervalMs,
    heartbeatIntervalMs,
    advertTtlSeconds,
    usageIntervalMs: positive(config.usageIntervalMs ?? AGENT_DEFAULTS.usageIntervalMs, "usage interval"),
    partitionGraceMs: positive(config.partitionGraceMs ?? DEFAULT_PARTITION_GRACE_MS, "partition grace"),
    fenceOnDisconnect: config.fenceOnDisconnect ?? false,
    republishIntervalMs: positive(config.republishIntervalMs ?? advertIntervalMs, "republish interval"),
    nvidiaSmi: config.nvidiaSmi ?? {},
    reliability,
    inheritEnv: [...(config.inheritEnv ?? AGENT_DEFAULTS.inheritEnv)],
    serviceHost: config.serviceHost || "127.0.0.1",
    containerRuntime: containerRuntime(config.containerRuntime),
    gpuMode: config.gpuMode,
  };
}

const RUNTIME = /^[A-Za-z0-9_./-]{1,256}$/;

function containerRuntime(value: string | undefined): string {
  const runtime = value?.trim() || "none";
  if (!RUNTIME.test(runtime) || runtime.startsWith("-")) {
    throw new AgentConfigError(
      `--container-runtime: expected auto, none, podman, docker or a path, got ${JSON.stringify(value)}`,
    );
  }
  return runtime;
}

// ---- CLI flag parsers -----------------------------------------------------------------------------------------

/** `capa agent` flags as the CLI receives them (strings; repeatable flags as arrays). */
export interface AgentFlags {
  nats?: string;
  id?: string;
  region?: string;
  zone?: string;
  label?: string[];
  price?: string[];
  simulateGpus?: string;
  workDir?: string;
  advertInterval?: string;
  heartbeatInterval?: string;
  advertTtl?: string;
  /** The scheduler's --partition-grace, same syntax: when this agent fences itself (fence.ts). */
  partitionGrace?: string;
  /** Fence on the bus clock too (fence.ts). */
  fenceOnDisconnect?: boolean;
  provider?: string;
  fabricDomain?: string;
  serviceHost?: string;
  containerRuntime?: string;
  gpuMode?: string;
}

/** "H100-80GB=2.49/1.20" → on-demand $2.49, interruptible $1.20 per GPU-hour; "H100=2.49" → no interruptible. */
export function parsePriceFlag(text: string): GpuPrice {
  const match = /^\s*([^=\s]+)\s*=\s*([^/\s]+)\s*(?:\/\s*([^/\s]+)\s*)?$/.exec(text);
  if (!match) throw new AgentConfigError(`--price ${JSON.stringify(text)}: expected MODEL=USD[/USD_INTERRUPTIBLE]`);
  let gpuModel: string;
  try {
    // Reuse the simulation spec parser so "h100" and "H100-80GB" both become the canonical "H100-80GB".
    gpuModel = parseGpuSpec(`1x${match[1]}`)[0]!.model;
  } catch (cause) {
    throw new AgentConfigError(`--price ${JSON.stringify(text)}: ${(cause as Error).message}`, { cause });
  }
  const usd = (value: string, what: string) => {
    try {
      const micros = parseUsd(value);
      if (micros < 0) throw new Error("negative");
      return micros;
    } catch (cause) {
      throw new AgentConfigError(`--price ${JSON.stringify(text)}: bad ${what} price ${JSON.stringify(value)}`, {
        cause,
      });
    }
  };
  return {
    gpuModel,
    onDemandPerHour: usd(match[2]!, "on-demand"),
    interruptiblePerHour: match[3] === undefined ? 0 : usd(match[3], "interruptible"),
  };
}

/** "tier=gold" → ["tier", "gold"]. */
export function parseLabelFlag(text: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new AgentConfigError(`--label ${JSON.stringify(text)}: expected KEY=VALUE`);
  const key = text.slice(0, eq).trim();
  const value = text.slice(eq + 1).trim();
  checkLabels({ [key]: value });
  return [key, value];
}

/** "500ms", "10s", "2m", "1h"; a bare number is seconds. */
export function parseDurationMs(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) throw new AgentConfigError(`${flag} ${JSON.stringify(text)}: expected a duration such as 10s or 500ms`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"]!;
  const ms = Math.round(Number(match[1]) * unit);
  return positive(ms, flag);
}

/** Builds an AgentConfig from CLI flags and the environment (CAPA_NATS_URL). Throws AgentConfigError. */
export function parseAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const labels: Record<string, string> = {};
  for (const text of flags.label ?? []) {
    const [key, value] = parseLabelFlag(text);
    labels[key] = value;
  }
  const config: AgentConfig = {
    nats: flags.nats ?? env.CAPA_NATS_URL ?? "nats://127.0.0.1:4222",
    region: flags.region ?? "local",
    labels,
    prices: (flags.price ?? []).map(parsePriceFlag),
  };
  if (flags.id !== undefined) config.agentId = flags.id;
  if (flags.zone !== undefined) config.zone = flags.zone;
  if (flags.provider !== undefined) config.provider = flags.provider;
  if (flags.fabricDomain !== undefined) config.fabricDomain = flags.fabricDomain;
  if (flags.simulateGpus !== undefined) {
    try {
      parseGpuSpec(flags.simulateGpus);
    } catch (cause) {
      throw new AgentConfigError(`--simulate-gpus: ${(cause as Error).message}`, { cause });
    }
    config.simulateGpus = flags.simulateGpus;
  }
  if (flags.workDir !== undefined) config.workDir = flags.workDir;
  if (flags.serviceHost !== undefined) config.serviceHost = flags.serviceHost;
  config.containerRuntime = flags.containerRuntime ?? "auto";
  if (flags.gpuMode !== undefined) {
    if (flags.gpuMode !== "cdi" && flags.gpuMode !== "env") {
      throw new AgentConfigError(`--gpu-mode ${JSON.stringify(flags.gpuMode)}: expected cdi or env`);
    }
    config.gpuMode = flags.gpuMode;
  }
  if (flags.advertInterval !== undefined) {
    config.advertIntervalMs = parseDurationMs(flags.advertInterval, "--advert-interval");
  }
  if (flags.heartbeatInterval !== undefined) {
    config.heartbeatIntervalMs = parseDurationMs(flags.heartbeatInterval, "--heartbeat-interval");
  }
  if (flags.advertTtl !== undefined) {
    config.advertTtlSeconds = Math.ceil(parseDurationMs(flags.advertTtl, "--advert-ttl") / 1000);
  }
  if (flags.partitionGrace !== undefined) {
    config.partitionGraceMs = parseDurationMs(flags.partitionGrace, "--partition-grace");
  }
  if (flags.fenceOnDisconnect) config.fenceOnDisconnect = true;
  // Validate now so the CLI reports every problem before connecting anywhere.
  resolveAgentConfig(config);
  return config;
}
