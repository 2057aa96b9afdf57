/**
 * The agents this scheduler knows. Records (advert, draining, lost) live in KV `capa_agents` and are written
 * only when they change; when each agent was last heard from is kept in memory only (heartbeats never touch
 * KV). After a restart every known agent gets a fresh timeout window to be heard from again.
 * The registry keeps the engine's ClusterState agent entries in step: lost agents are removed from it.
 */
import { jsonCodec, type TypedKv } from "@capa/bus";
import type { Advert, Heartbeat } from "@capa/domain";
import { NotFoundError } from "@capa/domain";
import type { ClusterStateApi } from "../planner/engine.js";
import { readAll } from "../store/read-all.js";
import type { AgentRecord } from "../store/records.js";
import type { WatchedEntry } from "../store/watch.js";
import { advertFingerprint, advertProblem, agentTimeoutMs, agentView } from "./advert.js";
import { type AliveClock, advanceAlive, type SilenceView } from "./partition.js";

export interface AgentEntry {
  record: AgentRecord;
  /** KV revision of the stored record (0 = never stored). */
  revision: number;
  /** Fingerprint of the stored advert + flags; differs from the live one when a write is due. */
  storedFingerprint: string;
  lastSeenMs: number;
  /** When its last heartbeat or advert was sent (this scheduler's clock): the partition test's evidence. */
  alive: AliveClock;
  /** When the cluster view's lastSeen was last refreshed (heartbeats refresh it at most every few seconds). */
  viewSeenMs: number;
}

export interface AdvertOutcome {
  /** New agent, or a lost agent back. */
  joined: boolean;
  /** Capacity-relevant content changed (GPUs, prices, labels, ...). */
  changed: boolean;
}

export class AgentRegistry {
  private readonly entries = new Map<string, AgentEntry>();
  /** GPU UUID → the agent (not lost) advertising it: the advert checks refuse a UUID another agent holds. */
  private readonly uuids = new Map<string, string>();

  constructor(
    private readonly kv: TypedKv<AgentRecord>,
    private readonly cluster: ClusterStateApi,
    private readonly now: () => number,
    private readonly timeoutOverrideMs: number | undefined,
  ) {}

  async load(onBad: (key: string, err: unknown) => void): Promise<void> {
    const now = this.now();
    const valid = (r: AgentRecord) => r?.advert && advertProblem(r.advert) === undefined;
    for (const { key, value, revision } of await readAll(this.kv.kv, jsonCodec<AgentRecord>(), () => true, onBad)) {
      if (!valid(value)) {
        onBad(key, new Error("not an agent record"));
        continue;
      }
      const entry: AgentEntry = {
        record: value,
        revision,
        storedFingerprint: fingerprint(value),
        lastSeenMs: now,
        alive: { aliveAtMs: now, lagFloorMs: undefined },
        viewSeenMs: now,
      };
      this.entries.set(value.advert.agentId, entry);
      if (!value.lost) {
        this.indexGpus(value.advert.agentId, undefined, value.advert);
        this.cluster.upsertAgent(agentView(value, now));
      }
    }
  }

  /** The agent (not lost) whose advert lists this GPU UUID. */
  uuidHolder(uuid: string): string | undefined {
    return this.uuids.get(uuid);
  }

  /** Keeps the UUID index in step with an agent's advert; `undefined` (lost) releases its UUIDs. */
  private indexGpus(agentId: string, previous: Advert | undefined, next: Advert | undefined): void {
    for (const g of previous?.gpus ?? []) if (this.uuids.get(g.uuid) === agentId) this.uuids.delete(g.uuid);
    for (const g of next?.gpus ?? []) if (g.uuid) this.uuids.set(g.uuid, agentId);
  }

  get(id: string): AgentEntry | undefined {
    return this.entries.get(id);
  }

  list(): AgentEntry[] {
    return [...this.entries.values()];
  }

  isPlaceable(id: string): boolean {
    const e = this.entries.get(id);
    return e !== undefined && !e.record.lost && !e.record.draining;
  }

  onAdvert(advert: Advert): AdvertOutcome {
    const now = this.now();
    const existing = this.entries.get(advert.agentId);
    if (
      existing &&
      existing.record.advert.bootId === advert.bootId &&
      advert.sequence < existing.record.advert.sequence
    )
      return { joined: false, changed: false }; // reordered, older advert
    const joined = !existing || existing.record.lost;
    const changed = joined || advertFingerprint(existing.record.advert) !== advertFingerprint(advert);
    const record: AgentRecord = {
      advert,
      draining: existing?.record.draining ?? false,
      lost: false,
      updatedAtMs: changed ? now : (existing?.record.updatedAtMs ?? now),
    };
    const entry: AgentEntry = existing ?? {
      record,
      revision: 0,
      storedFingerprint: "",
      lastSeenMs: now,
      alive: { aliveAtMs: 0, lagFloorMs: undefined },
      viewSeenMs: now,
    };
    this.indexGpus(advert.agentId, existing?.record.lost ? undefined : existing?.record.advert, advert);
    entry.record = record;
    entry.lastSeenMs = now;
    entry.alive = advanceAlive(entry.alive, advert.sentAtMs, now);
    this.entries.set(advert.agentId, entry);
    if (changed || now - entry.viewSeenMs > 1000) {
      entry.viewSeenMs = now;
      // Nothing capacity-relevant changed: only the sighting moves (the engine's index stays as it is).
      if (changed || !this.cluster.touchAgent(advert.agentId, now)) this.cluster.upsertAgent(agentView(record, now));
    }
    return { joined, changed };
  }

  /** Returns true when the heartbeat brought a lost agent back (same boot: it kept its advert). */
  onHeartbeat(hb: Heartbeat): boolean {
    const entry = this.entries.get(hb.agentId);
    if (!entry) return false; // unknown until it adverts
    const now = this.now();
    entry.lastSeenMs = now;
    entry.alive = advanceAlive(entry.alive, hb.sentAtMs, now);
    if (entry.record.lost) {
      if (entry.record.advert.bootId !== hb.bootId) return false; // a new boot must advert first
      entry.record = { ...entry.record, lost: false, updatedAtMs: now };
      this.indexGpus(hb.agentId, undefined, entry.record.advert);
      entry.viewSeenMs = now;
      this.cluster.upsertAgent(agentView(entry.record, now));
      return true;
    }
    if (now - entry.viewSeenMs > Math.min(5000, this.timeoutFor(entry) / 4)) {
      entry.viewSeenMs = now;
      if (!this.cluster.touchAgent(hb.agentId, now)) this.cluster.upsertAgent(agentView(entry.record, now));
    }
    return false;
  }

  /**
   * An accepted task report from the agent: proof it was alive at this moment, like a heartbeat, so a lost agent
   * is billed up to its last sign of life. Never revives a lost agent (only its heartbeat or advert does).
   */
  heard(agentId: string): void {
    const entry = this.entries.get(agentId);
    if (entry && !entry.record.lost) entry.lastSeenMs = Math.max(entry.lastSeenMs, this.now());
  }

  timeoutFor(entry: AgentEntry): number {
    return agentTimeoutMs(entry.record.advert, this.timeoutOverrideMs);
  }

  /** Every known agent's silence, for the loss decision (partition.ts). */
  silence(): SilenceView[] {
    const now = this.now();
    return this.list().map((e) => ({
      agentId: e.record.advert.agentId,
      region: e.record.advert.region,
      lastSeenMs: e.lastSeenMs,
      aliveAtMs: e.alive.aliveAtMs,
      lost: Boolean(e.record.lost),
      expired: !e.record.lost && now - e.lastSeenMs > this.timeoutFor(e),
      timeoutMs: this.timeoutFor(e),
    }));
  }

  /** Agents silent past their timeout and not yet marked lost. */
  expired(): string[] {
    const now = this.now();
    return this.list()
      .filter((e) => !e.record.lost && now - e.lastSeenMs > this.timeoutFor(e))
      .map((e) => e.record.advert.agentId);
  }

  markLost(id: string): void {
    const entry = this.entries.get(id);
    if (!entry || entry.record.lost) return;
    entry.record = { ...entry.record, lost: true, updatedAtMs: this.now() };
    this.indexGpus(id, entry.record.advert, undefined);
    this.cluster.removeAgent(id);
  }

  /** Persisted drain flag (any replica may call it): CAS on the stored record, then memory and cluster view. */
  async setDraining(id: string, draining: boolean): Promise<AgentEntry> {
    const entry = this.entries.get(id);
    if (!entry) throw new NotFoundError(`agent ${id} not found`);
    const stored = await this.kv.mutate(id, (current) => {
      const base = current ?? entry.record;
      return base.draining === draining ? undefined : { ...base, draining, updatedAtMs: this.now() };
    });
    if (stored) this.adopt(entry, stored.value, stored.revision);
    entry.record = { ...entry.record, draining };
    if (!entry.record.lost) this.cluster.upsertAgent(agentView(entry.record, entry.lastSeenMs));
    return entry;
  }

  /** Ids whose in-memory record differs from KV. */
  dirty(): string[] {
    return this.list()
      .filter((e) => fingerprint(e.record) !== e.storedFingerprint)
      .map((e) => e.record.advert.agentId);
  }

  /** Writes the in-memory record with CAS (leader only); the drain flag set by others in KV wins. */
  async persist(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    const stored = await this.kv.mutate(id, (current) => {
      const next = { ...entry.record, draining: current?.draining ?? entry.record.draining };
      return current && fingerprint(current) === fingerprint(next) ? undefined : next;
    });
    if (stored) this.adopt(entry, stored.value, stored.revision);
  }

  /** A record written by another replica (drain, lost) or by this one. */
  observeWatched(e: WatchedEntry, decodeRecord: (bytes: Uint8Array) => AgentRecord): void {
    if (e.deleted) return;
    const value = decodeRecord(e.value);
    const entry = this.entries.get(value.advert.agentId);
    if (!entry) {
      const now = this.now();
      this.entries.set(value.advert.agentId, {
        record: value,
        revision: e.revision,
        storedFingerprint: fingerprint(value),
        lastSeenMs: now,
        alive: { aliveAtMs: now, lagFloorMs: undefined },
        viewSeenMs: now,
      });
      if (!value.lost) {
        this.indexGpus(value.advert.agentId, undefined, value.advert);
        this.cluster.upsertAgent(agentView(value, now));
      }
      return;
    }
    if (e.revision <= entry.revision) return;
    const drainChanged = entry.record.draining !== value.draining;
    this.adopt(entry, value, e.revision);
    if (drainChanged) {
      entry.record = { ...entry.record, draining: value.draining };
      if (!entry.record.lost) this.cluster.upsertAgent(agentView(entry.record, entry.lastSeenMs));
    }
  }

  private adopt(entry: AgentEntry, stored: AgentRecord, revision: number): void {
    if (revision <= entry.revision) return;
    entry.revision = revision;
    entry.storedFingerprint = fingerprint(stored);
  }
}

function fingerprint(r: AgentRecord): string {
  return `${advertFingerprint(r.advert)}|${r.draining}|${r.lost}`;
}
