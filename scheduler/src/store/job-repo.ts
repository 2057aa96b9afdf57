/**
 * Jobs: KV `capa_jobs` is the truth; this keeps every job in memory (for reads and WatchJob) and serialises
 * changes per job. Every change is a CAS write on the revision last seen; a conflict re-reads and re-applies.
 * Changes by this process and by others (via the KV watch) reach the same listeners, in revision order.
 */
import { decode, encode, type TypedKv } from "@capa/bus";
import { ConflictError, type Job, NotFoundError } from "@capa/domain";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { EXPLAIN_PREFIX } from "./buckets.js";
import { readAll } from "./read-all.js";
import type { WatchedEntry } from "./watch.js";

export interface JobEntry {
  job: Job;
  revision: number;
}

export type JobListener = (entry: JobEntry, previous: JobEntry | undefined) => void;

export class JobRepo {
  private readonly cache = new Map<string, JobEntry>();
  private readonly perJob = new Map<string, Set<JobListener>>();
  private readonly all = new Set<JobListener>();
  private readonly locks = new KeyedMutex();

  constructor(
    readonly kv: TypedKv<Job>,
    private readonly now: () => number,
  ) {}

  async load(onBad: (key: string, err: unknown) => void): Promise<number> {
    const codec = { encode: encode.job, decode: decode.job };
    for (const e of await readAll(this.kv.kv, codec, (k) => !k.startsWith(EXPLAIN_PREFIX), onBad))
      this.observe({ job: e.value, revision: e.revision });
    return this.cache.size;
  }

  get(id: string): JobEntry | undefined {
    return this.cache.get(id);
  }

  /** From memory, else from KV (a job written by another replica that the watch has not delivered yet). */
  async fetch(id: string): Promise<JobEntry | undefined> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    return this.refresh(id);
  }

  async require(id: string): Promise<JobEntry> {
    const entry = await this.fetch(id);
    if (!entry) throw new NotFoundError(`job ${id} not found`);
    return entry;
  }

  list(): JobEntry[] {
    return [...this.cache.values()];
  }

  async refresh(id: string): Promise<JobEntry | undefined> {
    const entry = await this.kv.get(id);
    if (!entry) return undefined;
    this.observe({ job: entry.value, revision: entry.revision });
    return this.cache.get(id);
  }

  /** CAS create; ConflictError when the id exists. */
  async create(job: Job): Promise<JobEntry> {
    const revision = await this.kv.create(job.id, job);
    const entry = { job, revision };
    this.observe(entry);
    return entry;
  }

  /** Runs `work` holding this job's in-process lock (the applier keeps it across allocation and job commits). */
  withLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(id, work);
  }

  /** One CAS write on `base.revision`; the caller holds the lock. ConflictError when someone wrote since. */
  async write(base: JobEntry, job: Job): Promise<JobEntry> {
    const next = { ...job, updatedAtMs: this.now() };
    const revision = await this.kv.update(base.job.id, next, base.revision);
    const entry = { job: next, revision };
    this.observe(entry);
    return entry;
  }

  /**
   * Read-modify-CAS under the lock, retried on conflict. `change` gets the current job and returns the new one,
   * or undefined to leave it. Returns the current entry afterwards, or undefined when the job does not exist.
   */
  mutate(id: string, change: (job: Job, revision: number) => Job | undefined): Promise<JobEntry | undefined> {
    return this.withLock(id, () => this.mutateLocked(id, change));
  }

  async mutateLocked(
    id: string,
    change: (job: Job, revision: number) => Job | undefined,
    maxAttempts = 10,
  ): Promise<JobEntry | undefined> {
    let current = await this.fetch(id);
    for (let attempt = 0; attempt < maxAttempts && current; attempt++) {
      const next = change(structuredClone(current.job), current.revision);
      if (next === undefined) return current;
      try {
        return await this.write(current, next);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        current = await this.refresh(id);
      }
    }
    if (!current) return undefined;
    throw new ConflictError(`job ${id}: gave up after ${maxAttempts} conflicting writes`);
  }

  /** Feeds an entry seen in KV (watch, read, own write). Older or equal revisions are ignored. */
  observe(entry: JobEntry): void {
    const previous = this.cache.get(entry.job.id);
    if (previous && previous.revision >= entry.revision) return;
    this.cache.set(entry.job.id, entry);
    for (const listener of this.perJob.get(entry.job.id) ?? []) listener(entry, previous);
    for (const listener of this.all) listener(entry, previous);
  }

  /**
   * Removes a final job from KV and memory if it is still at the revision the caller read (retention; CAS).
   * False when it changed since. The caller holds the job's lock.
   */
  async purge(entry: JobEntry): Promise<boolean> {
    if (!(await this.kv.purgeAt(entry.job.id, entry.revision))) return false;
    this.cache.delete(entry.job.id);
    return true;
  }

  observeWatched(e: WatchedEntry): void {
    if (e.key.startsWith(EXPLAIN_PREFIX)) return;
    // Another replica's retention purged it: it leaves this replica's memory too.
    if (e.deleted) {
      this.cache.delete(e.key);
      return;
    }
    this.observe({ job: decode.job(e.value), revision: e.revision });
  }

  subscribe(id: string, listener: JobListener): () => void {
    let set = this.perJob.get(id);
    if (!set) {
      set = new Set();
      this.perJob.set(id, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.perJob.delete(id);
    };
  }

  onChange(listener: JobListener): () => void {
    this.all.add(listener);
    return () => this.all.delete(listener);
  }
}
