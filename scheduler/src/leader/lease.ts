/**
 * Pure lease rules. The lease value carries its own expiry (nats-server 2.9 ignores per-key TTL) and every
 * change is a CAS write, so two replicas can never both believe they took it over from the same state.
 * - No lease → acquire (term 1).  Mine → renew (same term, new expiry).  Someone else's, expired → take over
 *   (term + 1).  Someone else's, live → follow.
 * A leader that cannot renew stops acting `marginMs` before its stored expiry, so it has stepped down before
 * anyone may take over (clocks are assumed roughly in sync; the margin absorbs small skew).
 */
import type { LeaseRecord } from "../store/records.js";

export type LeaseDecision =
  | { kind: "acquire" | "renew" | "takeover"; record: LeaseRecord }
  | { kind: "follow"; holder: string; expiresAtMs: number };

export function decideLease(current: LeaseRecord | undefined, me: string, nowMs: number, ttlMs: number): LeaseDecision {
  if (!current)
    return { kind: "acquire", record: { holder: me, term: 1, expiresAtMs: nowMs + ttlMs, acquiredAtMs: nowMs } };
  if (current.holder === me && current.expiresAtMs > nowMs)
    return { kind: "renew", record: { ...current, expiresAtMs: nowMs + ttlMs } };
  if (current.expiresAtMs <= nowMs)
    return {
      kind: "takeover",
      record: { holder: me, term: current.term + 1, expiresAtMs: nowMs + ttlMs, acquiredAtMs: nowMs },
    };
  return { kind: "follow", holder: current.holder, expiresAtMs: current.expiresAtMs };
}

/** Whether a holder of `record` may still act at `nowMs`. */
export function mayAct(record: LeaseRecord | undefined, me: string, nowMs: number, marginMs: number): boolean {
  return record !== undefined && record.holder === me && nowMs < record.expiresAtMs - marginMs;
}

/** The value written when a leader steps down cleanly: expired now, so a successor need not wait. */
export function released(record: LeaseRecord, nowMs: number): LeaseRecord {
  return { ...record, expiresAtMs: Math.min(record.expiresAtMs, nowMs) };
}
