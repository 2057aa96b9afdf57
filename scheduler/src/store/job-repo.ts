/**
 * Jobs: KV `capa_jobs` is the truth; this keeps the active jobs in memory (for reads, the planner, settlement and
 * WatchJob) and serialises changes per job. Every change is a CAS write on the revision last seen; a conflict
 * re-reads and re-applies. Changes by this process and by others (via the KV watch) reach the same listeners, in
 * revision order.
 *
 * Memory is bounded by active work, not by history: a job is *active* until it is final and none of its tasks
 * holds an allocation any more (a failed gang's siblings still run until stopped). A retired job leaves the active
 * set for a bounded LRU of recently retired jobs (`retiredCacheSize`); an older one is read back from KV when asked
 * for (`fetch`). What stays per job for the whole retention window is its summary (tenant, state, times, the
 * highest epoch and its ended allocations: tens of bytes), which ListJobs pages and retention sweeps over.
 */
import { decode, encode, type TypedKv } from "@capa/bus";
import {
  ConflictError,
  clonePlain,
  isFinalJobState,
  isFinalTaskState,
  type Job,
  type JobState,
  NotFoundError,
} from "@capa/domain";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { EXPLAIN_PREFIX } from "./buckets.js";
import { readAll } from "./read-all.js";
import type { WatchedEntry } from "./watch.js";

export interface JobEntry {
  job: Job;
  revision: number;
}

export type JobListener = (entry: JobEntry, previous: JobEntry | undefined) => void;

/** What is kept of every job, active or retired, until retention removes it. */
export interface JobSummary {
  id: string;
  tenant: string;
  state: JobState;
  createdAtMs: number;
  finishedAtMs: number;
  revision: number;
  /** The highest fencing epoch any of its tasks carried (new epochs are issued above every stored one). */
  maxEpoch: number;
  /** Tasks whose allocation ended (placed once, now final): the finished allocations settlement covers. */
  endedAllocations: number;
}

/** Recently retired jobs kept decoded (GetJob, WatchJob and late reports of a just-finished job hit memory). */
export const DEFAULT_RETIRED_CACHE_SIZE = 2_000;

/** Final, and no task holds an allocation: nothing will change it but retention. */
export function isRetired(job: Job): boolean {
  return isFinalJobState(job.state) && job.tasks.every((t) => t.state === "pending" || isFinalTaskState(t.state));
}

export function summaryOf(entry: JobEntry): JobSummary {
  const { job } = entry;
  let maxEpoch = 0;
  let endedAllocations = 0;
  for (const t of job.tasks) {
    if (t.epoch > maxEpoch) maxEpoch = t.epoch;
    if (t.epoch > 0 && t.agentId !== "" && isFinalTaskState(t.state)) endedAllocations++;
  }
  return {
    id: job.id,
    tenant: job.tenant,
    state: job.state,
    createdAtMs: job.createdAtMs,
    finishedAtMs: job.finishedAtMs,
    revision: entry.revision,
    maxEpoch,
    endedAllocations,
  };
}

export class JobRepo {
  /** Active jobs: always in memory. */
  private readonly active = new Map<string, JobEntry>();
  /** Retired jobs, least recently used first (a Map iterates in insertion order; a hit re-inserts). */
  private readonly retired = new Map<string, JobEntry>();
  private readonly summaries = new Map<string, JobSummary>();
  private readonly perJob = new Map<string, Set<JobListener>>();
  private readonly all = new Set<JobListener>();
  private readonly forgotten = new Set<(id: string) => void>();
  private readonly locks = new KeyedMutex();
  /**
   * Own writes (create, CAS update) not answered yet, by job, and the watch entries of those jobs that arrived
   * meanwhile. The watch often delivers an own write before its acknowledgement does; decoding it then is wasted
   * (the acknowledged write is observed anyway, at the same revision). So a job's watch entries wait until its
   * writes are answered, and are then taken like any other (decoded only when newer than what is held): none is
   * lost or reordered, another writer's change is only seen after the write it raced (which it made fail).
   */
  private readonly writing = new Map<string, number>();
  private readonly heldWatched = new Map<string, WatchedEntry[]>();

  constructor(
    readonly kv: TypedKv<Job>,
    private readonly now: () => number,
    private readonly retiredCacheSize = DEFAULT_RETIRED_CACHE_SIZE,
  ) {}

  async load(onBad: (key: string, err: unknown) => void): Promise<number> {
    const codec = { encode: encode.job, decode: decode.job };
    for (const e of await readAll(this.kv.kv, codec, (k) => !k.startsWith(EXPLAIN_PREFIX), onBad))
      this.observe({ job: e.value, revision: e.revision });
    return this.summaries.size;
  }

  /** From memory only: an active job, or a recently retired one (undefined for an older one: use `fetch`). */
  get(id: string): JobEntry | undefined {
    const active = this.active.get(id);
    if (active) return active;
    const retired = this.retired.get(id);
    if (retired) {
      this.retired.delete(id);
      this.retired.set(id, retired);
    }
    return retired;
  }

  /**
   * From memory, else from KV: a retired job that left the cache, or a job written by another replica that the
   * watch has not delivered yet.
   */
  async fetch(id: string): Promise<JobEntry | undefined> {
    const cached = this.get(id);
    if (cached) return cached;
    return this.refresh(id);
  }

  /** The job's summary (every job until retention removes it; no store read). */
  summary(id: string): JobSummary | undefined {
    return this.summaries.get(id);
  }

  /** Every job's summary, active and retired. */
  allSummaries(): IterableIterator<JobSummary> {
    return this.summaries.values();
  }

  /** Jobs known to this replica (active and retired). */
  get size(): number {
    return this.summaries.size;
  }

  /** Retired jobs held decoded right now (at most `retiredCacheSize`). */
  get cachedRetired(): number {
    return this.retired.size;
  }

  async require(id: string): Promise<JobEntry> {
    const entry = await this.fetch(id);
    if (!entry) throw new NotFoundError(`job ${id} not found`);
    return entry;
  }

  /** The active jobs (not final, or final with a task still holding an allocation). */
  listActive(): JobEntry[] {
    return [...this.active.values()];
  }

  /** The entries of `ids` (memory, else KV; missing ones left out), in order. */
  async fetchMany(ids: readonly string[]): Promise<JobEntry[]> {
    const out = await Promise.all(ids.map((id) => this.fetch(id)));
    return out.filter((e): e is JobEntry => e !== undefined);
  }

  /**
   * The job as the store has it now, read through the stream leader (a replica may lag; see TypedKv.getLatest),
   * and taken as the truth even at a lower revision than the one held: a stream whose every server was killed
   * restarts from what it had flushed, so its revisions can go back (seen in the fault suite: held 686, stored
   * 658), and a cache that only moves forward would then conflict on every write, forever.
   */
  async refresh(id: string): Promise<JobEntry | undefined> {
    const entry = await this.kv.getLatest(id);
    if (!entry) return undefined;
    const read = { job: entry.value, revision: entry.revision };
    this.observe(read, true);
    const held = this.get(id);
    if (held) return held;
    // A retired job read back (observe ignored it: its summary is at this revision): back into the LRU.
    if (isRetired(read.job) && this.summaries.get(id)?.revision === read.revision) {
      this.retired.set(id, read);
      this.trimRetired();
    }
    return read;
  }

  /** CAS create; ConflictError when the id exists. */
  async create(job: Job): Promise<JobEntry> {
    return this.writeAndObserve(job, () => this.kv.create(job.id, job));
  }

  /** Runs `work` holding this job's in-process lock (the applier keeps it across allocation and job commits). */
  withLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(id, work);
  }

  /** One CAS write on `base.revision`; the caller holds the lock. ConflictError when someone wrote since. */
  async write(base: JobEntry, job: Job): Promise<JobEntry> {
    const next = { ...job, updatedAtMs: this.now() };
    return this.writeAndObserve(next, () => this.kv.update(base.job.id, next, base.revision));
  }

  /**
   * One store write of `job`, counted as in flight while it runs (see `writing`); once answered it is observed
   * first, then the watch entries held meanwhile are taken (so an entry of its own revision is never decoded).
   */
  private async writeAndObserve(job: Job, write: () => Promise<number>): Promise<JobEntry> {
    const id = job.id;
    this.writing.set(id, (this.writing.get(id) ?? 0) + 1);
    try {
      const entry = { job, revision: await write() };
      this.observe(entry);
      return entry;
    } finally {
      const n = this.writing.get(id)! - 1;
      if (n > 0) this.writing.set(id, n);
      else this.writing.delete(id);
      this.releaseWatched(id);
    }
  }

  /** Takes the watch entries held for `id` once none of its writes is in flight any more. */
  private releaseWatched(id: string): void {
    if (this.writing.has(id)) return;
    const held = this.heldWatched.get(id);
    if (!held) return;
    this.heldWatched.delete(id);
    for (const e of held) this.observeWatched(e);
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
      const next = change(clonePlain(current.job), current.revision);
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
  /** Takes `entry` if it is newer than what is held (or whatever is held when `authoritative`: see refresh). */
  observe(entry: JobEntry, authoritative = false): void {
    const id = entry.job.id;
    const known = this.summaries.get(id);
    if (known && (authoritative ? known.revision === entry.revision : known.revision >= entry.revision)) return;
    const previous = this.active.get(id) ?? this.retired.get(id);
    this.summaries.set(id, summaryOf(entry));
    if (isRetired(entry.job)) {
      this.active.delete(id);
      this.retired.delete(id);
      this.retired.set(id, entry);
      this.trimRetired();
    } else {
      this.retired.delete(id);
      this.active.set(id, entry);
    }
    for (const listener of this.perJob.get(id) ?? []) listener(entry, previous);
    for (const listener of this.all) listener(entry, previous);
  }

  private trimRetired(): void {
    for (const id of this.retired.keys()) {
      if (this.retired.size <= this.retiredCacheSize) return;
      this.retired.delete(id);
    }
  }

  private forget(id: string): void {
    this.active.delete(id);
    this.retired.delete(id);
    if (this.summaries.delete(id)) for (const listener of this.forgotten) listener(id);
  }

  /**
   * Removes a final job from KV and memory if it is still at the revision the caller read (retention; CAS).
   * False when it changed since. The caller holds the job's lock.
   */
  async purge(entry: JobEntry): Promise<boolean> {
    if (!(await this.kv.purgeAt(entry.job.id, entry.revision))) return false;
    this.forget(entry.job.id);
    return true;
  }

  observeWatched(e: WatchedEntry): void {
    if (e.key.startsWith(EXPLAIN_PREFIX)) return;
    // Another replica's retention purged it: it leaves this replica's memory too.
    if (e.deleted) {
      this.forget(e.key);
      return;
    }
    // Our own writes come back on the watch: one we hold already at that revision is not decoded again.
    if ((this.summaries.get(e.key)?.revision ?? 0) >= e.revision) return;
    // An own write of this job is in flight: this is most likely it (see `writing`); taken once it is answered.
    if (this.writing.has(e.key)) {
      const held = this.heldWatched.get(e.key);
      if (held) held.push(e);
      else this.heldWatched.set(e.key, [e]);
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

  /** Called with the id of a job purged by retention (here or on another replica): per-job state can go. */
  onForget(listener: (id: string) => void): () => void {
    this.forgotten.add(listener);
    return () => this.forgotten.delete(listener);
  }
}
