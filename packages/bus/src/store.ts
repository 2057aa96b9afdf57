/**
 * Durable state layout on JetStream: KV buckets (file storage) and two task streams. Creating them is idempotent,
 * so every scheduler replica and test calls `ensureStore` at start.
 *
 * - CAPA_TASKS: `capa.v1.task.*.status.*` and `capa.v1.task.*.usage.*` (the last token is the reporting agent),
 *   the events task state and billing depend on. Small messages, limits sized for events (30 days, 1 GiB).
 * - CAPA_INTAKE_0/1: pending submissions of the submit fallback (scheduler/src/jobs/intake.ts).
 * - CAPA_LOGS: `capa.v1.task.*.logs.*`, its own limits (7 days, 4 GiB by default, oldest discarded first) and a
 *   per-task cap in chunks (`max_msgs_per_subject`, 65,536 by default: a task over it loses its oldest chunks, so
 *   one noisy task keeps its tail and cannot take the whole stream). A log flood therefore only ever evicts logs.
 *
 * Migration: before the split CAPA_TASKS held `capa.v1.task.>` (logs included). Streams may not overlap, so
 * `ensureStore` first narrows CAPA_TASKS to its two subjects, then creates CAPA_LOGS. Log messages stored before
 * the split stay in CAPA_TASKS until they age out, but StreamLogs reads only CAPA_LOGS: logs that predate the
 * split are not shown (a consumer cannot filter on a subject its stream no longer has). Until CAPA_LOGS exists an
 * agent's log publishes get no ack and its outbox retries them. Task subjects gained the agent id as a last token
 * (so nats-server permissions bind a report to its sender); `ensureStore` moves both streams to the new subjects,
 * and events stored under the old 5-token subjects stay until they age out, read by nothing (pre-release layout).
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BUCKETS,
  INTAKE_STREAMS,
  intakeSubjects,
  kvStreamName,
  REQUEST_REGISTERS,
  STREAMS,
  subjects,
} from "./subjects.js";

export interface StoreOptions {
  /** JetStream replicas (1 on a single server; 3 in a cluster). */
  replicas?: number;
  /** Pin buckets and streams to this NATS cluster (the home region of a supercluster); see `storeLayout`. */
  placementCluster?: string;
  /** How long task status and usage are kept in CAPA_TASKS (default 30 days). */
  taskEventsMaxAgeMs?: number;
  /** CAPA_TASKS size cap (default 1 GiB). */
  taskEventsMaxBytes?: number;
  /** How long task logs are kept in CAPA_LOGS (default 7 days). */
  logsMaxAgeMs?: number;
  /** CAPA_LOGS size cap; the oldest logs go first (default 4 GiB). */
  logsMaxBytes?: number;
  /** Most log chunks kept per task (≤ 32 KiB each); a task over it loses its oldest (default 65,536; -1 = none). */
  logsMaxChunksPerTask?: number;
  /** Most pending submissions each intake stream holds; a full one refuses the fallback (default 100,000). */
  intakeMaxMessages?: number;
}

const DAY_MS = 24 * 3600 * 1000;
const GiB = 1024 * 1024 * 1024;
export const STORE_DEFAULTS = {
  taskEventsMaxAgeMs: 30 * DAY_MS,
  taskEventsMaxBytes: GiB,
  logsMaxAgeMs: 7 * DAY_MS,
  logsMaxBytes: 4 * GiB,
  logsMaxChunksPerTask: 65_536,
  intakeMaxMessages: 100_000,
} as const;

export interface Store {
  js: JetStreamClient;
  jsm: JetStreamManager;
  jobs: KV;
  agents: KV;
  allocs: KV;
  leader: KV;
  policy: KV;
  /** `capa_requests` (= `requestRegisters[0]`). */
  requests: KV;
  /** The request-id registers: 1 below 3 replicas, else 3 (REQUEST_REGISTERS). */
  requestRegisters: KV[];
}

const NANOS_PER_MS = 1_000_000;

export async function ensureStore(nc: NatsConnection, options: StoreOptions = {}): Promise<Store> {
  const replicas = options.replicas ?? 1;
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const placement = jsPlacement(options.placementCluster);
  const bucket = (name: string, history: number) =>
    kvm.create(name, { storage: "file", history, replicas, ...(placement ? { placement } : {}) });
  const [jobs, agents, allocs, leader, policy, requests] = await Promise.all([
    bucket(BUCKETS.jobs, 5),
    bucket(BUCKETS.agents, 1),
    bucket(BUCKETS.allocs, 5),
    bucket(BUCKETS.leader, 1),
    bucket(BUCKETS.policy, 20),
    bucket(BUCKETS.requests, 1),
  ]);
  // Order matters: CAPA_TASKS is narrowed (a deployment from before the split has `capa.v1.task.>`) before
  // CAPA_LOGS takes the log subjects, since streams may not overlap. Both steps are idempotent.
  await ensureStream(jsm, {
    name: STREAMS.tasks,
    subjects: [subjects.allTaskStatus, subjects.allTaskUsage],
    retention: "limits",
    discard: "old",
    max_age: (options.taskEventsMaxAgeMs ?? STORE_DEFAULTS.taskEventsMaxAgeMs) * NANOS_PER_MS,
    max_bytes: options.taskEventsMaxBytes ?? STORE_DEFAULTS.taskEventsMaxBytes,
    storage: "file",
    num_replicas: replicas,
    duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
    ...(placement ? { placement } : {}),
  });
  await ensureStream(jsm, {
    name: STREAMS.logs,
    subjects: [subjects.allTaskLogs],
    retention: "limits",
    discard: "old",
    max_age: (options.logsMaxAgeMs ?? STORE_DEFAULTS.logsMaxAgeMs) * NANOS_PER_MS,
    max_bytes: options.logsMaxBytes ?? STORE_DEFAULTS.logsMaxBytes,
    max_msgs_per_subject: options.logsMaxChunksPerTask ?? STORE_DEFAULTS.logsMaxChunksPerTask,
    storage: "file",
    num_replicas: replicas,
    duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
    ...(placement ? { placement } : {}),
  });
  // The submit fallback's intake streams: no age limit (a pending submission is acknowledged to its tenant and
  // must never expire unmaterialised); the materialiser deletes each message once its job exists. Discard new:
  // a full stream refuses the publish, so the submission is refused, never dropped. Dedup by msg id (request key).
  for (const [i, name] of INTAKE_STREAMS.entries())
    await ensureStream(jsm, {
      name,
      subjects: [intakeSubjects(i)],
      retention: "limits",
      discard: "new",
      max_msgs: options.intakeMaxMessages ?? STORE_DEFAULTS.intakeMaxMessages,
      storage: "file",
      num_replicas: replicas,
      duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
      ...(placement ? { placement } : {}),
    });
  // Three registers from 3 replicas on, and wherever they exist already: every replica of a deployment must use
  // the same registers (one started with a lower --js-replicas must not claim in capa_requests alone).
  const requestRegisters = [requests];
  const existing = await Promise.all(
    REQUEST_REGISTERS.slice(1).map((name) =>
      jsm.streams.info(kvStreamName(name)).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (replicas >= 3 || existing.every(Boolean)) {
    const added = await Promise.all(
      REQUEST_REGISTERS.slice(1).map((name, i) => (existing[i] ? kvm.open(name) : bucket(name, 1))),
    );
    await migrateRequestRegisters(requests, added);
    requestRegisters.push(...added);
  }
  return { js, jsm, jobs, agents, allocs, leader, policy, requests, requestRegisters };
}

/** The key, in the first added register, that says the copy below is done. */
export const REQUEST_REGISTERS_MIGRATED = "_quorum.migrated";

/**
 * Copies every record of `capa_requests` into the added request registers (create: a record already there is
 * left), once per store: a store from before the quorum keeps each request id's job, since its record then has
 * its majority. Runs before the scheduler serves a claim. Returns how many records were copied.
 */
export async function migrateRequestRegisters(from: KV, to: readonly KV[]): Promise<number> {
  if (to.length === 0 || (await to[0]!.get(REQUEST_REGISTERS_MIGRATED))) return 0;
  let copied = 0;
  for await (const key of await from.keys()) {
    const entry = await from.get(key);
    if (!entry || entry.operation !== "PUT" || entry.length === 0) continue;
    await Promise.all(
      to.map((kv) =>
        kv.create(key, entry.value).catch(async (err) => {
          // Already there is fine; a store error stops the copy before the marker, so the next start redoes it.
          if (!(await kv.get(key))) throw err;
          return 0;
        }),
      ),
    );
    copied++;
  }
  await to[0]!.create(REQUEST_REGISTERS_MIGRATED, new TextEncoder().encode(String(Date.now()))).catch(() => 0);
  return copied;
}

type StreamConfig = Parameters<JetStreamManager["streams"]["add"]>[0];

/** A JetStream placement naming only a cluster (no tags), or undefined for a lone server. */
export function jsPlacement(cluster: string | undefined): { cluster: string; tags: string[] } | undefined {
  return cluster ? { cluster, tags: [] } : undefined;
}

/**
 * Creates the stream, or updates an existing one to `config`. Replicas and placement apply at creation only,
 * as for KV buckets (which are never updated): an existing stream keeps its copies and its cluster, so a
 * scheduler restarted while a home server is down (the cluster then looks smaller) never scales state down, and
 * moving or rescaling it stays an operator's decision (`nats stream edit`), not a side effect of a restart.
 */
export async function ensureStream(jsm: JetStreamManager, config: StreamConfig): Promise<void> {
  try {
    const info = await jsm.streams.info(config.name!);
    const { placement: _placement, num_replicas: _replicas, ...update } = config;
    await jsm.streams.update(config.name!, {
      ...update,
      num_replicas: info.config.num_replicas,
      ...(info.config.placement ? { placement: info.config.placement } : {}),
    });
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    await jsm.streams.add(config);
  }
}
