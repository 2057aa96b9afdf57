/**
 * The audit trail: JetStream stream CAPA_AUDIT (`capa.v1.audit.<Service>.<Method>`), append-only by the server's
 * own rules (deny_delete, deny_purge), kept for a year. One JSON entry per authenticated mutating call, allowed or
 * refused: who (key id, name, role, tenant), what (method and target), when, and the answer's status. Entries
 * carry no request bodies, so no secret (env values, API tokens) can reach them.
 *
 * An entry the stream does not take (no Raft leader for a few seconds after a home server died; NATS
 * reconnecting) is kept in order in a bounded outbox and published again until it lands, each entry under its own
 * message id, so a retry of a publish that landed without its answer is deduplicated by the stream. Before, such
 * entries were logged and lost: a server kill left a hole in the trail.
 */

import { randomUUID } from "node:crypto";
import { ensureStream, jsPlacement, type Store, type StoreOptions } from "@capa/bus";
import { readStream } from "@capa/ledger";
import type { Logger } from "pino";

export const AUDIT_STREAM = "CAPA_AUDIT";
const SUBJECT_PREFIX = "capa.v1.audit";
const NANOS_PER_MS = 1_000_000;
const YEAR_MS = 365 * 24 * 3600 * 1000;
/** Entries kept while the stream takes none (beyond: the oldest go, counted in `dropped` and logged). */
export const AUDIT_OUTBOX_MAX = 10_000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/** The part of JetStream the audit trail publishes with. */
export interface AuditPublisher {
  publish(subject: string, data: Uint8Array, options: { msgID: string }): Promise<unknown>;
}

export interface AuditEntry {
  atMs: number;
  keyId: string;
  actor: string;
  role: string;
  tenant: string;
  method: string;
  target: string;
  result: string;
  detail: string;
  seq?: number;
}

export interface AuditQuery {
  fromMs: number;
  toMs: number;
  actor: string;
  method: string;
  tenant: string;
  limit: number;
}

export class AuditLog {
  /** Entries not taken yet, oldest first (each with its message id). */
  private readonly outbox: { subject: string; data: Uint8Array; msgID: string; method: string }[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Entries dropped because the outbox was full. */
  dropped = 0;

  constructor(
    private readonly store: Pick<Store, "js" | "jsm">,
    private readonly logger: Logger,
    private readonly publisher: AuditPublisher = store.js,
  ) {}

  /** Entries waiting for the stream to take them. */
  get pending(): number {
    return this.outbox.length;
  }

  /** Resolves once the outbox is empty again (or retrying stopped). */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Stops retrying (scheduler shutdown); what is still pending is logged. */
  close(): void {
    this.closed = true;
    if (this.outbox.length > 0) this.logger.error({ pending: this.outbox.length }, "audit entries not written at stop");
  }

  static async open(store: Store, logger: Logger, layout: StoreOptions = {}): Promise<AuditLog> {
    const placement = jsPlacement(layout.placementCluster);
    await ensureStream(store.jsm, {
      name: AUDIT_STREAM,
      subjects: [`${SUBJECT_PREFIX}.>`],
      storage: "file",
      num_replicas: layout.replicas ?? 1,
      ...(placement ? { placement } : {}),
      max_age: YEAR_MS * NANOS_PER_MS,
      deny_delete: true,
      deny_purge: true,
    });
    return new AuditLog(store, logger);
  }

  /**
   * Appends one entry, in order after any still pending; resolves once it is written or queued for retry (the
   * call's answer does not change), never throws.
   */
  async append(entry: AuditEntry): Promise<void> {
    const subject = `${SUBJECT_PREFIX}.${entry.method.replace(/[^A-Za-z0-9_-]+/g, ".")}`;
    const item = {
      subject,
      data: new TextEncoder().encode(JSON.stringify(entry)),
      msgID: randomUUID(),
      method: entry.method,
    };
    if (this.outbox.length === 0) {
      try {
        await this.publisher.publish(item.subject, item.data, { msgID: item.msgID });
        return;
      } catch (err) {
        this.logger.warn({ err, method: entry.method, keyId: entry.keyId }, "audit entry not written yet; retrying");
      }
    }
    this.outbox.push(item);
    if (this.outbox.length > AUDIT_OUTBOX_MAX) {
      const lost = this.outbox.shift()!;
      this.dropped++;
      this.logger.error({ method: lost.method, dropped: this.dropped }, "audit outbox full: oldest entry dropped");
    }
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
    });
  }

  /** Publishes the outbox in order, backing off while the stream takes nothing. */
  private async flush(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (this.outbox.length > 0 && !this.closed) {
      await new Promise((r) => setTimeout(r, delay).unref());
      while (this.outbox.length > 0 && !this.closed) {
        const head = this.outbox[0]!;
        try {
          await this.publisher.publish(head.subject, head.data, { msgID: head.msgID });
        } catch {
          break;
        }
        if (this.outbox[0] === head) this.outbox.shift();
        delay = RETRY_MIN_MS;
      }
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  /** Entries matching the query, oldest first, the newest `limit` of them. */
  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const raw = await readStream(this.store.js, this.store.jsm, AUDIT_STREAM, `${SUBJECT_PREFIX}.>`);
    const out: AuditEntry[] = [];
    raw.forEach((data, i) => {
      let e: AuditEntry;
      try {
        e = JSON.parse(new TextDecoder().decode(data)) as AuditEntry;
      } catch {
        return;
      }
      if (e.atMs < q.fromMs || (q.toMs > 0 && e.atMs >= q.toMs)) return;
      if (q.actor && e.keyId !== q.actor && e.actor !== q.actor) return;
      if (q.method && e.method !== q.method && !e.method.endsWith(`/${q.method}`)) return;
      if (q.tenant && e.tenant !== q.tenant) return;
      out.push({ ...e, seq: i + 1 });
    });
    return out.slice(-q.limit);
  }
}
