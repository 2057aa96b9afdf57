/**
 * Copies checkpoints between agents through the scheduler's checkpoint store (a JetStream Object Store that only
 * the scheduler can touch). The agent never opens the store: it sends requests from its own subject subtree,
 * `capa.v1.agent.<region>.<agentId>.checkpoint.put|get`, which nats-server lets only this agent's user publish;
 * the scheduler answers only for tasks whose assignment lists this agent (scheduler/src/checkpoints/broker.ts).
 *
 * - store: the newest complete checkpoint is packed as a tar (symlinks left out, so a task cannot make the agent
 *   ship files from outside its checkpoint dir) into a temp file and sent in chunks; the first chunk names the
 *   total size, and a copy over the store's limit is refused before anything else is sent ("too-large").
 * - fetch: the chunks of the checkpoint the assignment resumes from are read back and unpacked into the resume
 *   dir; node-tar refuses absolute paths and `..` on extraction.
 */
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { type CheckpointReplyMessage, decode, encode, type NatsConnection, subjects } from "@capa/bus";
import { type Checkpoint, type CheckpointCopy, formatBytes, type TaskAssignment } from "@capa/domain";
import type { FoundCheckpoint } from "./index.js";

/** tar is loaded with the first checkpoint copy: most agents never copy one, and it costs ~2 MB resident. */
const loadTar = () => import("tar");

/** Chunk size: well under nats-server's default 1 MiB max payload, with room for the rest of the message. */
export const CHECKPOINT_CHUNK_BYTES = 256 * 1024;

export interface StoredCopy {
  copy: CheckpointCopy;
  copyNote: string;
  object: string;
}

export interface TransferOptions {
  nc: NatsConnection;
  region: string;
  agentId: string;
  /** Per request; a put or get that gets no answer in time fails the copy (default 10 s). */
  requestTimeoutMs?: number;
}

/** A request the scheduler refused or did not answer; `reason` is the refusal code. */
export class CheckpointTransferError extends Error {
  override name = "CheckpointTransferError";
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class CheckpointTransfer {
  constructor(private readonly o: TransferOptions) {}

  /** Copies `found` into the store; never throws: a failed copy is reported as such (the checkpoint stays local). */
  async store(a: TaskAssignment, found: FoundCheckpoint): Promise<StoredCopy> {
    const work = mkdtempSync(join(tmpdir(), "capa-ckpt-put-"));
    try {
      const file = join(work, "copy.tar");
      const tar = await loadTar();
      await tar.c(
        {
          cwd: dirname(found.path),
          file,
          portable: true,
          follow: false,
          filter: (_path, stat) => !("isSymbolicLink" in stat && stat.isSymbolicLink()),
        },
        [basename(found.path)],
      );
      const size = statSync(file).size;
      const chunks = Math.max(1, Math.ceil(size / CHECKPOINT_CHUNK_BYTES));
      let seq = 0;
      let object = "";
      for await (const data of readChunks(file)) {
        const reply = await this.request(
          subjects.checkpointPut(this.o.region, this.o.agentId),
          encode.checkpointChunk({
            taskId: a.taskId,
            epoch: a.epoch,
            name: found.name,
            seq,
            data,
            sizeBytes: size,
            chunks,
            last: seq === chunks - 1,
          }),
        );
        if (!reply.ok) {
          if (reply.error === "too-large")
            return {
              copy: "too-large",
              copyNote: `copy of ${formatBytes(size)} is over the checkpoint store's limit of ${formatBytes(reply.maxBytes)}`,
              object: "",
            };
          return { copy: "copy-failed", copyNote: `${reply.error}: ${reply.message}`, object: "" };
        }
        object = reply.object || object;
        seq++;
      }
      if (size === 0) {
        // An empty tar cannot happen (headers), but a zero-chunk loop must not report success.
        return { copy: "copy-failed", copyNote: "empty copy", object: "" };
      }
      return { copy: "stored", copyNote: `${formatBytes(size)} in ${chunks} chunk(s)`, object };
    } catch (err) {
      return { copy: "copy-failed", copyNote: (err as Error).message.slice(0, 200), object: "" };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Reads the checkpoint `a` resumes from out of the store and unpacks it into `intoDir`; returns its path. */
  async fetch(a: TaskAssignment, checkpoint: Checkpoint, intoDir: string): Promise<string> {
    const work = mkdtempSync(join(tmpdir(), "capa-ckpt-get-"));
    try {
      const file = join(work, "copy.tar");
      writeFileSync(file, new Uint8Array(0));
      let chunks = 1;
      for (let seq = 0; seq < chunks; seq++) {
        const reply = await this.request(
          subjects.checkpointGet(this.o.region, this.o.agentId),
          encode.checkpointGet({ taskId: a.taskId, epoch: a.epoch, seq }),
        );
        if (!reply.ok)
          throw new CheckpointTransferError(reply.error, `checkpoint store refused: ${reply.error}: ${reply.message}`);
        chunks = reply.chunks;
        await appendFile(file, reply.data);
      }
      await (await loadTar()).x({ cwd: intoDir, file, strict: true });
      const path = join(intoDir, checkpoint.name);
      statSync(path);
      return path;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** One request; "not-held" is retried briefly (a scheduler replica may not have seen the assignment yet). */
  private async request(subject: string, body: Uint8Array): Promise<CheckpointReplyMessage> {
    const timeout = this.o.requestTimeoutMs ?? 10_000;
    let reply: CheckpointReplyMessage | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const msg = await this.o.nc.request(subject, body, { timeout });
        reply = decode.checkpointReply(msg.data);
      } catch (err) {
        throw new CheckpointTransferError(
          "unavailable",
          `no answer from the checkpoint store: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      if (reply.ok || reply.error !== "not-held") return reply;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
    return reply!;
  }
}

async function* readChunks(file: string): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(file, { highWaterMark: CHECKPOINT_CHUNK_BYTES });
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of stream as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? piece : Buffer.concat([pending, piece]);
    while (pending.length >= CHECKPOINT_CHUNK_BYTES) {
      yield pending.subarray(0, CHECKPOINT_CHUNK_BYTES);
      pending = pending.subarray(CHECKPOINT_CHUNK_BYTES);
    }
  }
  if (pending.length > 0) yield pending;
}
