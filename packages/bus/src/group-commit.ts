/**
 * Group commit on one KV key: every change queued for a key while a write to it is in flight is applied, in
 * order, to the same value and stored with ONE compare-and-set write, so N concurrent changes to one document
 * (a tenant's budget, an agent's assignment list) cost one round trip instead of N contended ones.
 *
 * Guarantees, the same as N sequential `TypedKv.mutate` calls:
 * - Durable before answered: a caller's promise resolves only after the write holding its change was acknowledged.
 * - CAS: the write is conditional on the revision the batch was applied to. On a conflict (another process wrote)
 *   the key is re-read and EVERY change of the batch is re-applied to the fresh value, so each is decided against
 *   what is stored, never against a stale copy. Changes must therefore be pure functions of their input (they
 *   may be called more than once, like `mutate`'s).
 * - Isolation: a change that throws (a refusal: over budget, GPU taken) fails only its own caller; the batch goes on
 *   from the value before it. A failed write (store unavailable) fails every caller of the batch.
 * - No contention failure inside one process: changes to a key never race each other here (one batch at a time per
 *   key), so only writes of other processes can conflict; those are retried with a short randomised backoff.
 * The last value written (or read) is kept per key as the next batch's base, so a batch normally costs one write
 * and no read; a stale base only costs a conflict and a re-read. A batch that writes nothing (every change a
 * no-op or a refusal) is never answered from a kept value: it is decided again on a fresh read, since no CAS
 * would tell that the kept value was stale. Except when every change of it was queued with `noopOnKept` and none
 * refused: its caller vouches that a no-op decided on an older value is a no-op on any newer one (e.g. a check
 * that a value which only ever grows is at least X), so the batch is answered from the kept value.
 */
import { ConflictError } from "@capa/domain";
import type { TypedKv, Versioned } from "./kv.js";

export interface GroupCommitOptions<T> {
  /** Most changes in one write (bounds the time one batch holds the key and the work redone on a conflict). */
  maxBatch?: number;
  /** Conflicting writes (by other processes) tolerated per batch before its callers get a ConflictError. */
  maxAttempts?: number;
  /** The base to apply a batch to before any read: e.g. a cache kept current by a watch. */
  cached?: (key: string) => Versioned<T> | undefined;
  /**
   * Sees every value read from or written to the store (to keep such a cache in step). Each is the store's
   * current value (a leader read, or our own write), to be taken even at a lower revision than a cache holds: a
   * stream restarted after every server was killed can go back to an older revision.
   */
  observe?: (entry: Versioned<T>) => void;
}

interface Pending<T> {
  change: (current: T | undefined) => T | undefined;
  noopOnKept: boolean;
  resolve: (entry: Versioned<T> | undefined) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  private readonly queues = new Map<string, Pending<T>[]>();
  private readonly bases = new Map<string, Versioned<T> | null>();
  private readonly maxBatch: number;
  private readonly maxAttempts: number;
  /** Writes issued (one per batch that changed something), for tests and benchmarks. */
  writes = 0;

  constructor(
    readonly kv: TypedKv<T>,
    private readonly options: GroupCommitOptions<T> = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1024;
    this.maxAttempts = options.maxAttempts ?? 50;
  }

  /**
   * Queues `change` for `key`; resolves with the stored entry after the write that holds it (or the current
   * entry when no change of the batch changed anything). `change` returns the new value or undefined for none.
   * `noopOnKept`: when `change` makes no change on the kept value, it would make none on any newer value either,
   * so that answer needs no fresh read (a refusal is always decided again on one).
   */
  mutate(
    key: string,
    change: (current: T | undefined) => T | undefined,
    options: { noopOnKept?: boolean } = {},
  ): Promise<Versioned<T> | undefined> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(key);
      const idle = queue === undefined;
      if (!queue) {
        queue = [];
        this.queues.set(key, queue);
      }
      queue.push({ change, noopOnKept: options.noopOnKept === true, resolve, reject });
      if (idle) void this.drain(key);
    });
  }

  /** Forgets the kept base of a key (e.g. after it was written by other means). */
  invalidate(key: string): void {
    this.bases.delete(key);
  }

  private async drain(key: string): Promise<void> {
    // Let the callers of this tick join the first batch.
    await Promise.resolve();
    for (;;) {
      const queue = this.queues.get(key)!;
      if (queue.length === 0) {
        this.queues.delete(key);
        return;
      }
      const batch = queue.splice(0, this.maxBatch);
      await this.commit(key, batch);
    }
  }

  private async base(key: string, fresh: boolean): Promise<Versioned<T> | undefined> {
    if (!fresh) {
      const cached = this.options.cached?.(key);
      const kept = this.bases.get(key);
      // The newer of the two (the watch may be ahead of our last write, or behind it).
      const best = cached && (!kept || cached.revision >= kept.revision) ? cached : kept === null ? undefined : kept;
      if (best !== undefined || kept === null) return best;
    }
    // Through the stream leader: after a conflict a lagging replica's answer would only conflict again.
    const stored = await this.kv.getLatest(key);
    this.bases.set(key, stored ?? null);
    if (stored) this.options.observe?.(stored);
    return stored;
  }

  private async commit(key: string, batch: Pending<T>[]): Promise<void> {
    let fresh = false;
    for (let attempt = 0; ; attempt++) {
      let current: Versioned<T> | undefined;
      try {
        current = await this.base(key, fresh);
      } catch (err) {
        for (const p of batch) p.reject(err);
        return;
      }
      let value = current?.value;
      let changed = false;
      const failed = new Map<Pending<T>, unknown>();
      for (const p of batch) {
        try {
          const next = p.change(value);
          if (next !== undefined) {
            value = next;
            changed = true;
          }
        } catch (err) {
          failed.set(p, err);
        }
      }
      const settle = (entry: Versioned<T> | undefined) => {
        for (const p of batch) {
          if (failed.has(p)) p.reject(failed.get(p));
          else p.resolve(entry);
        }
      };
      if (!changed) {
        // Nothing to write, so no CAS checks the base: a refusal or a no-op decided on a kept (possibly stale)
        // value is decided again on a fresh read before anyone is answered (unless every change vouched that its
        // no-op holds on any newer value, and none refused).
        if (!fresh && (failed.size > 0 || batch.some((p) => !p.noopOnKept))) {
          fresh = true;
          continue;
        }
        settle(current);
        return;
      }
      try {
        this.writes++;
        const revision = await this.kv.write(key, value as T, current?.revision ?? 0);
        const entry = { key, value: value as T, revision };
        this.bases.set(key, entry);
        this.options.observe?.(entry);
        settle(entry);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt + 1 >= this.maxAttempts) {
          this.bases.delete(key);
          const failure =
            err instanceof ConflictError
              ? new ConflictError(`gave up on ${key} after ${this.maxAttempts} writes of other processes`, {
                  cause: err,
                })
              : err;
          for (const p of batch) p.reject(failed.get(p) ?? failure);
          return;
        }
        fresh = true;
        // Another process wrote this key: back off a little (randomised, bounded) so two writers do not lock-step.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
      }
    }
  }
}
