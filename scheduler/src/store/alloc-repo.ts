/**
 * Assignments: KV `capa_allocs/<agentId>` holds each agent's whole desired state. Every change is a CAS
 * read-modify-write, group-committed per agent (@capa/bus `GroupCommit`): the changes that queue up for one
 * agent while a write to it is in flight (placements of many jobs, removals of many finished tasks) are applied in
 * order and stored with one CAS write. The base is the cached entry (kept current by own writes and the KV
 * watch); the CAS on its revision makes a stale cache cost a conflict and a re-read, never a lost update, and
 * every change is then re-decided against the stored value. Listeners see (before, after) for every new
 * revision, from own writes and from the KV watch alike; the scheduler keeps the placement engine's ClusterState
 * in step from them.
 */
import { decode, encode, GroupCommit, type TypedKv } from "@capa/bus";
import { type AgentAssignments, clonePlain, type TaskAssignment } from "@capa/domain";
import { readAll } from "./read-all.js";
import type { BucketWatch, WatchedEntry } from "./watch.js";

export interface AllocEntry {
  value: AgentAssignments;
  revision: number;
}

export type AllocListener = (agentId: string, before: TaskAssignment[], after: TaskAssignment[]) => void;

/** Thrown by a `change` callback to abort a commit (e.g. the GPUs are no longer free). */
export class CommitRefused extends Error {
  override name = "CommitRefused";
}

export class AllocRepo {
  private readonly cache = new Map<string, AllocEntry>();
  /** taskId → agent ids listing it. */
  private readonly byTask = new Map<string, Set<string>>();
  private readonly listeners = new Set<AllocListener>();
  private readonly commits: GroupCommit<AgentAssignments>;
  private watch: Pick<BucketWatch, "catchUp"> | undefined;

  constructor(
    readonly kv: TypedKv<AgentAssignments>,
    private readonly now: () => number,
  ) {
    this.commits = new GroupCommit(kv, {
      cached: (agentId) => {
        const e = this.cache.get(agentId);
        return e && { key: agentId, value: e.value, revision: e.revision };
      },
      observe: (e) => this.observe(e.key, { value: e.value, revision: e.revision }, true),
    });
  }

  /**
   * The KV watch keeping this cache current (scheduler.ts); `catchUp` waits for it. Without one (the in-memory
   * harness) the cache is all there is and `catchUp` has nothing to wait for.
   */
  follow(watch: Pick<BucketWatch, "catchUp">): void {
    this.watch = watch;
  }

  /**
   * Resolves once this cache holds every assignment revision the store held when called (WatchBehind after
   * `timeoutMs`). Called before a decision that must not rest on a lagging watch: a new leader's recovery (the
   * previous leader's last commits), and the evaluation adopting a commit whose outcome was unknown (the write
   * may have landed without its answer).
   */
  catchUp(timeoutMs?: number): Promise<void> {
    return this.watch?.catchUp(timeoutMs) ?? Promise.resolve();
  }

  /** KV writes issued for assignments (one per group commit), for tests and benchmarks. */
  get writes(): number {
    return this.commits.writes;
  }

  async load(onBad: (key: string, err: unknown) => void): Promise<void> {
    const codec = { encode: encode.assignments, decode: decode.assignments };
    for (const e of await readAll(this.kv.kv, codec, () => true, onBad))
      this.observe(e.key, { value: e.value, revision: e.revision });
  }

  get(agentId: string): AllocEntry | undefined {
    return this.cache.get(agentId);
  }

  entries(): [string, AllocEntry][] {
    return [...this.cache.entries()];
  }

  /** Where a task is listed (normally once; more only while a stale listing awaits removal). */
  listings(taskId: string): { agentId: string; assignment: TaskAssignment }[] {
    const out: { agentId: string; assignment: TaskAssignment }[] = [];
    for (const agentId of this.byTask.get(taskId) ?? []) {
      const assignment = this.cache.get(agentId)?.value.tasks.find((t) => t.taskId === taskId);
      if (assignment) out.push({ agentId, assignment });
    }
    return out;
  }

  /** Whether `agentId` has a listing (any epoch) for the task. */
  isListed(agentId: string, taskId: string): boolean {
    return this.cache.get(agentId)?.value.tasks.some((t) => t.taskId === taskId) ?? false;
  }

  /** Every listed assignment, with its agent. */
  *all(): Iterable<{ agentId: string; assignment: TaskAssignment }> {
    for (const [agentId, e] of this.cache) for (const assignment of e.value.tasks) yield { agentId, assignment };
  }

  /**
   * CAS read-modify-write of one agent's assignments. `change` gets the stored task list (a copy) and returns
   * the new one, or undefined for no change; it may throw CommitRefused, which refuses this change only. Group
   * committed with the other changes queued for the agent; may be called again after a conflict.
   */
  async mutate(
    agentId: string,
    change: (tasks: TaskAssignment[]) => TaskAssignment[] | undefined,
  ): Promise<AllocEntry> {
    const stored = await this.commits.mutate(agentId, (current) => {
      const next = change(clonePlain(current?.tasks ?? []));
      return next === undefined ? undefined : { agentId, tasks: next, updatedAtMs: this.now() };
    });
    return stored
      ? { value: stored.value, revision: stored.revision }
      : (this.cache.get(agentId) ?? { value: empty(agentId, 0), revision: 0 });
  }

  /**
   * Takes `entry` when it is newer than the cached one, or whenever it differs when `authoritative` (the store's
   * current value, read from the stream leader or just written by us: see GroupCommit's `observe`), or always
   * when `replace` (a replay after the stream came back behind: a revision may now hold another write).
   */
  observe(agentId: string, entry: AllocEntry, authoritative: boolean | "replace" = false): void {
    const previous = this.cache.get(agentId);
    if (previous && authoritative !== "replace") {
      if (authoritative ? previous.revision === entry.revision : previous.revision >= entry.revision) return;
    }
    this.cache.set(agentId, entry);
    const before = previous?.value.tasks ?? [];
    for (const t of before) this.byTask.get(t.taskId)?.delete(agentId);
    for (const t of entry.value.tasks) {
      let set = this.byTask.get(t.taskId);
      if (!set) {
        set = new Set();
        this.byTask.set(t.taskId, set);
      }
      set.add(agentId);
    }
    for (const t of before) if (this.byTask.get(t.taskId)?.size === 0) this.byTask.delete(t.taskId);
    for (const listener of this.listeners) listener(agentId, before, entry.value.tasks);
  }

  observeWatched(e: WatchedEntry): void {
    // Our own writes come back on the watch: one we hold already at that revision is not decoded again. A replay
    // (the stream came back behind) is the store's truth even below what is cached (a lost write's revision).
    if (!e.replayed && (this.cache.get(e.key)?.revision ?? 0) >= e.revision) return;
    const value = e.deleted ? empty(e.key, 0) : decode.assignments(e.value);
    this.observe(e.key, { value, revision: e.revision }, e.replayed ? "replace" : false);
  }

  onChange(listener: AllocListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function empty(agentId: string, updatedAtMs: number): AgentAssignments {
  return { agentId, tasks: [], updatedAtMs };
}
