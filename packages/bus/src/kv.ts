/**
 * Typed access to a KV bucket with compare-and-set. Every state change in capa goes through `update` with
 * the revision it read, so two writers never silently overwrite each other.
 */

import { ConflictError } from "@capa/domain";
import type { KV } from "@nats-io/kv";

export interface Versioned<T> {
  key: string;
  value: T;
  /** KV revision; pass it back to `update` for CAS. */
  revision: number;
}

export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

function isWrongLastSequence(err: unknown): boolean {
  const text = String((err as Error)?.message ?? err);
  return /wrong last sequence|key exists|10071/i.test(text);
}

/** Told about store failures (metrics): CAS conflicts apart from every other error. Must not throw. */
export interface KvObserver {
  error(op: "get" | "create" | "update" | "delete" | "purge", err: unknown): void;
  conflict(op: "create" | "update"): void;
}

/**
 * A view of `kv` whose gets go to the stream leader (the stream info API) instead of any replica. nats.js decides
 * per bucket handle from its `direct` flag, which the handle exposes; a copy with it off shares everything else.
 */
function leaderOnly(kv: KV): KV {
  if ((kv as { direct?: boolean }).direct !== true) return kv;
  return Object.assign(Object.create(Object.getPrototypeOf(kv)) as KV, kv, { direct: false });
}

export class TypedKv<T> {
  /** The same bucket read through the stream leader only (see `getLatest`); made on first use. */
  private leaderKv: KV | undefined;

  constructor(
    readonly kv: KV,
    private readonly codec: Codec<T>,
    private readonly observer?: KvObserver,
  ) {}

  /** A read any replica may answer (JetStream direct get where the bucket allows it): fast, possibly behind. */
  get(key: string): Promise<Versioned<T> | undefined> {
    return this.read(this.kv, key);
  }

  /**
   * The key as the stream leader has it. A direct get may be answered by a follower that lags behind, for a while
   * after a stream leader is killed even by many writes (seen in the fault suite: a write that timed out had
   * landed, every refresh came back older, and the CAS retries ran out forever). After a CAS conflict only the
   * leader's answer is the current revision, so conflict handling reads with this.
   */
  getLatest(key: string): Promise<Versioned<T> | undefined> {
    this.leaderKv ??= leaderOnly(this.kv);
    return this.read(this.leaderKv, key);
  }

  private async read(kv: KV, key: string): Promise<Versioned<T> | undefined> {
    let entry: Awaited<ReturnType<KV["get"]>>;
    try {
      entry = await kv.get(key);
    } catch (err) {
      this.observer?.error("get", err);
      throw err;
    }
    if (!entry || entry.operation !== "PUT" || entry.length === 0) return undefined;
    return { key, value: this.codec.decode(entry.value), revision: entry.revision };
  }

  /** Creates the key; ConflictError when it exists. */
  async create(key: string, value: T): Promise<number> {
    try {
      return await this.kv.create(key, this.codec.encode(value));
    } catch (err) {
      if (isWrongLastSequence(err)) {
        this.observer?.conflict("create");
        throw new ConflictError(`key ${key} already exists`, { cause: err });
      }
      this.observer?.error("create", err);
      throw err;
    }
  }

  /** CAS update; ConflictError when the key changed since `revision`. */
  async update(key: string, value: T, revision: number): Promise<number> {
    try {
      return await this.kv.update(key, this.codec.encode(value), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) {
        this.observer?.conflict("update");
        throw new ConflictError(`key ${key} changed since revision ${revision}`, { cause: err });
      }
      this.observer?.error("update", err);
      throw err;
    }
  }

  /** Create when absent (revision 0), else CAS update. */
  async write(key: string, value: T, revision: number): Promise<number> {
    return revision === 0 ? this.create(key, value) : this.update(key, value, revision);
  }

  /**
   * Read-modify-write with CAS, retried on conflict. `change` returns the new value, or undefined to leave the
   * key unchanged. Returns the stored entry (new or unchanged).
   */
  async mutate(
    key: string,
    change: (current: T | undefined) => T | undefined,
    maxAttempts = 20,
  ): Promise<Versioned<T> | undefined> {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const current = attempt === 0 ? await this.get(key) : await this.getLatest(key);
      const next = change(current?.value);
      if (next === undefined) return current;
      try {
        const revision = await this.write(key, next, current?.revision ?? 0);
        return { key, value: next, revision };
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new ConflictError(`gave up on ${key} after ${maxAttempts} conflicting writes`);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.kv.delete(key);
    } catch (err) {
      this.observer?.error("delete", err);
      throw err;
    }
  }

  /** Removes the key and its history if it is still at `revision` (CAS); false when it changed since. */
  async purgeAt(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.purge(key, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      this.observer?.error("purge", err);
      throw err;
    }
  }

  async keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.keys()) out.push(key);
    return out;
  }

  /** Every live entry. */
  async list(): Promise<Versioned<T>[]> {
    const out: Versioned<T>[] = [];
    for (const key of await this.keys()) {
      const entry = await this.get(key);
      if (entry) out.push(entry);
    }
    return out;
  }
}

export const jsonCodec = <T>(): Codec<T> => ({
  encode: (value) => new TextEncoder().encode(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)) as T,
});
