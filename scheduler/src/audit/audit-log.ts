/**
 * The audit trail: JetStream stream CAPA_AUDIT (`capa.v1.audit.<Service>.<Method>`), append-only by the server's
 * own rules (deny_delete, deny_purge), kept for a year. One JSON entry per authenticated mutating call, allowed or
 * refused: who (key id, name, role, tenant), what (method and target), when, and the answer's status. Entries
 * carry no request bodies, so no secret (env values, API tokens) can reach them.
 */
import { ensureStream, jsPlacement, type Store, type StoreOptions } from "@capa/bus";
import { readStream } from "@capa/ledger";
import type { Logger } from "pino";

export const AUDIT_STREAM = "CAPA_AUDIT";
const SUBJECT_PREFIX = "capa.v1.audit";
const NANOS_PER_MS = 1_000_000;
const YEAR_MS = 365 * 24 * 3600 * 1000;

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
  private constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

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

  /** Appends one entry; a failure is logged (the call's answer does not change), never thrown. */
  async append(entry: AuditEntry): Promise<void> {
    const subject = `${SUBJECT_PREFIX}.${entry.method.replace(/[^A-Za-z0-9_-]+/g, ".")}`;
    try {
      await this.store.js.publish(subject, new TextEncoder().encode(JSON.stringify(entry)));
    } catch (err) {
      this.logger.error({ err, method: entry.method, keyId: entry.keyId }, "audit entry not written");
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
