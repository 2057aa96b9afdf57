/**
 * Durable state layout on JetStream: KV buckets (file storage) and the task event stream. Creating them is
 * idempotent, so every scheduler replica and test calls `ensureStore` at start.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUCKETS, STREAMS, subjects } from "./subjects.js";

export interface StoreOptions {
  /** JetStream replicas (1 on a single server; 3 in a cluster). */
  replicas?: number;
  /** How long task events (status, logs, usage) are kept. */
  taskEventsMaxAgeMs?: number;
  taskEventsMaxBytes?: number;
}

export interface Store {
  js: JetStreamClient;
  jsm: JetStreamManager;
  jobs: KV;
  agents: KV;
  allocs: KV;
  leader: KV;
  policy: KV;
  requests: KV;
}

const NANOS_PER_MS = 1_000_000;

export async function ensureStore(nc: NatsConnection, options: StoreOptions = {}): Promise<Store> {
  const replicas = options.replicas ?? 1;
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const bucket = (name: string, history: number) => kvm.create(name, { storage: "file", history, replicas });
  const [jobs, agents, allocs, leader, policy, requests] = await Promise.all([
    bucket(BUCKETS.jobs, 5),
    bucket(BUCKETS.agents, 1),
    bucket(BUCKETS.allocs, 5),
    bucket(BUCKETS.leader, 1),
    bucket(BUCKETS.policy, 20),
    bucket(BUCKETS.requests, 1),
  ]);
  await ensureStream(jsm, {
    name: STREAMS.tasks,
    subjects: [subjects.allTasks],
    max_age: (options.taskEventsMaxAgeMs ?? 7 * 24 * 3600 * 1000) * NANOS_PER_MS,
    max_bytes: options.taskEventsMaxBytes ?? 1024 * 1024 * 1024,
    storage: "file",
    num_replicas: replicas,
    duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
  });
  return { js, jsm, jobs, agents, allocs, leader, policy, requests };
}

type StreamConfig = Parameters<JetStreamManager["streams"]["add"]>[0];

export async function ensureStream(jsm: JetStreamManager, config: StreamConfig): Promise<void> {
  try {
    await jsm.streams.info(config.name!);
    await jsm.streams.update(config.name!, config);
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    await jsm.streams.add(config);
  }
}
