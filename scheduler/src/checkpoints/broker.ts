/**
 * The checkpoint store broker: the only way into the checkpoint store (JetStream Object Store
 * `capa_checkpoints`), for agents that hold the task.
 *
 * Why a broker and not object-store permissions: an Object Store cannot be scoped per object under nats-server
 * permissions (chunks live on `$O.<bucket>.C.<nuid>`, and reads need STREAM.MSG.GET or consumers that no subject
 * filter ties to an object name). So agents never touch the store; they send requests from their own subtree
 * (`capa.v1.agent.<region>.<agentId>.checkpoint.put|get`, which only that agent's NATS user may publish: the
 * broker learns the sender from the subject) and the broker checks the agent's desired state (`capa_allocs/<id>`):
 *
 * - put: the agent lists the task at that epoch (a stopping listing counts: a preempted task checkpoints on
 *   SIGTERM). Chunk `seq` becomes object `<taskId>/<epoch>/<name>/<seq>`; the last chunk writes the manifest
 *   `<taskId>/<epoch>/<name>` once every chunk is there with the declared total size. A copy over `maxBytes` is
 *   refused on its first chunk ("too-large").
 * - get: the agent lists the task at that epoch AND that listing resumes from a stored checkpoint: the object is
 *   taken from the assignment, never from the request, so an agent reads only the checkpoint it was given.
 *
 * Each request stands alone (no state between chunks), so every scheduler replica serves them (queue group).
 */
import {
  type CheckpointRefusal,
  checkpointReply,
  decode,
  encode,
  type NatsConnection,
  OBJECT_BUCKETS,
  subjects,
} from "@capa/bus";
import type { TaskAssignment } from "@capa/domain";
import { type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import type { Logger } from "pino";

export const DEFAULT_CHECKPOINT_COPY_MAX_BYTES = 64 * 1024 * 1024;
/** Copies older than this are dropped by the store itself (JetStream max age): resumes need recent ones. */
export const CHECKPOINT_STORE_TTL_MS = 7 * 24 * 3600 * 1000;

/** Opens (creating if needed) the checkpoint store, placed and replicated like the KV buckets. */
export function openCheckpointStore(
  nc: NatsConnection,
  layout: { replicas: number; placementCluster?: string },
): Promise<ObjectStore> {
  return new Objm(nc).create(OBJECT_BUCKETS.checkpoints, {
    storage: StorageType.File,
    replicas: layout.replicas,
    ttl: CHECKPOINT_STORE_TTL_MS * 1_000_000,
    ...(layout.placementCluster && { placement: { cluster: layout.placementCluster, tags: [] } }),
  });
}
/** Largest chunk accepted (agents send 256 KiB). */
const MAX_CHUNK_BYTES = 512 * 1024;
const TASK_ID = /^[A-Za-z0-9_-]{1,128}$/;
const NAME = /^[^./][^/]{0,254}$/;

export interface CheckpointBrokerDeps {
  nc: NatsConnection;
  store: ObjectStore;
  /** The agent's current desired state (the scheduler's cache of `capa_allocs`). */
  assignments: (agentId: string) => readonly TaskAssignment[];
  maxBytes: number;
  logger: Logger;
  /** Counts refusals by reason (capa_checkpoint_requests_refused_total). */
  onRefused?: (op: "put" | "get", reason: CheckpointRefusal) => void;
}

class Refusal extends Error {
  constructor(
    readonly reason: CheckpointRefusal,
    message: string,
    readonly maxBytes = 0,
  ) {
    super(message);
  }
}

/** `capa.v1.agent.<region>.<agentId>.checkpoint.<op>` → agent id and op. */
function parse(subject: string): { agentId: string; op: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 7 || parts[5] !== "checkpoint") return undefined;
  return { agentId: parts[4]!, op: parts[6]! };
}

export const chunkObject = (manifest: string, seq: number) => `${manifest}/${seq}`;
export const manifestObject = (taskId: string, epoch: number, name: string) => `${taskId}/${epoch}/${name}`;

interface Manifest {
  chunks: number;
  sizeBytes: number;
}

export function startCheckpointBroker(d: CheckpointBrokerDeps): { stop(): void } {
  const sub = d.nc.subscribe(subjects.allCheckpointRequests, {
    queue: "capa-checkpoints",
    callback: (err, msg) => {
      if (err) return;
      void (async () => {
        const where = parse(msg.subject);
        if (!where || !msg.reply) return;
        const op = where.op === "put" ? "put" : "get";
        let reply: Uint8Array;
        try {
          if (where.op === "put") reply = await put(d, where.agentId, msg.data);
          else if (where.op === "get") reply = await get(d, where.agentId, msg.data);
          else throw new Refusal("invalid", `unknown operation ${where.op}`);
        } catch (e) {
          const r = e instanceof Refusal ? e : new Refusal("unavailable", (e as Error).message);
          if (!(e instanceof Refusal)) d.logger.warn({ err: e, agentId: where.agentId }, "checkpoint request failed");
          d.onRefused?.(op, r.reason);
          reply = encode.checkpointReply(
            checkpointReply({ error: r.reason, message: r.message, maxBytes: r.maxBytes }),
          );
        }
        msg.respond(reply);
      })();
    },
  });
  return { stop: () => sub.unsubscribe() };
}

function held(d: CheckpointBrokerDeps, agentId: string, taskId: string, epoch: number): TaskAssignment {
  const a = d.assignments(agentId).find((t) => t.taskId === taskId && t.epoch === epoch);
  if (!a) throw new Refusal("not-held", `agent ${agentId} does not hold task ${taskId} at epoch ${epoch}`);
  return a;
}

async function put(d: CheckpointBrokerDeps, agentId: string, body: Uint8Array): Promise<Uint8Array> {
  let c: ReturnType<typeof decode.checkpointChunk>;
  try {
    c = decode.checkpointChunk(body);
  } catch {
    throw new Refusal("invalid", "not a CheckpointChunk");
  }
  if (!TASK_ID.test(c.taskId) || !NAME.test(c.name)) throw new Refusal("invalid", "bad task id or checkpoint name");
  if (c.sizeBytes > d.maxBytes)
    throw new Refusal("too-large", `${c.sizeBytes} bytes is over the limit of ${d.maxBytes}`, d.maxBytes);
  const maxChunks = Math.ceil(d.maxBytes / 1024) + 1;
  if (c.chunks < 1 || c.chunks > maxChunks || c.seq >= c.chunks || c.data.length > MAX_CHUNK_BYTES)
    throw new Refusal("invalid", "chunk out of range");
  held(d, agentId, c.taskId, c.epoch);
  const manifest = manifestObject(c.taskId, c.epoch, c.name);
  await d.store.putBlob({ name: chunkObject(manifest, c.seq) }, c.data);
  if (!c.last) return encode.checkpointReply(checkpointReply({ ok: true }));
  let total = 0;
  for (let seq = 0; seq < c.chunks; seq++) {
    const info = await d.store.info(chunkObject(manifest, seq));
    if (!info) throw new Refusal("missing", `chunk ${seq} of ${c.chunks} was not stored`);
    total += info.size;
  }
  if (total !== c.sizeBytes)
    throw new Refusal("invalid", `chunks hold ${total} bytes, not the declared ${c.sizeBytes}`);
  const m: Manifest = { chunks: c.chunks, sizeBytes: total };
  await d.store.putBlob({ name: manifest }, new TextEncoder().encode(JSON.stringify(m)));
  return encode.checkpointReply(checkpointReply({ ok: true, object: manifest }));
}

async function get(d: CheckpointBrokerDeps, agentId: string, body: Uint8Array): Promise<Uint8Array> {
  let g: ReturnType<typeof decode.checkpointGet>;
  try {
    g = decode.checkpointGet(body);
  } catch {
    throw new Refusal("invalid", "not a CheckpointGet");
  }
  const a = held(d, agentId, g.taskId, g.epoch);
  const from = a.resumeFrom;
  if (!from || from.copy !== "stored" || !from.object)
    throw new Refusal("not-held", `task ${g.taskId} at epoch ${g.epoch} resumes from no stored checkpoint`);
  const raw = await d.store.getBlob(from.object);
  if (!raw) throw new Refusal("missing", `checkpoint ${from.name} is no longer in the store`);
  const m = JSON.parse(new TextDecoder().decode(raw)) as Manifest;
  if (g.seq >= m.chunks) throw new Refusal("invalid", `chunk ${g.seq} of ${m.chunks}`);
  const data = await d.store.getBlob(chunkObject(from.object, g.seq));
  if (!data) throw new Refusal("missing", `chunk ${g.seq} of checkpoint ${from.name} is no longer in the store`);
  return encode.checkpointReply(checkpointReply({ ok: true, data, chunks: m.chunks, sizeBytes: m.sizeBytes }));
}
