/**
 * Settlement math for the ledger, pure. One finished allocation yields three entries with deterministic ids:
 *
 *   charge = costForGpuMillis(price, gpuMilliseconds)   rounded half-up to the micro (tenant pays)
 *   fee    = splitFee(charge, feeBasisPoints).fee       rounded down (platform keeps)
 *   payout = charge − fee                               the remainder (provider receives)
 *
 * so charge = fee + payout exactly, always. Ids are `<kind>:<taskId>:<epoch>`: one allocation (task + epoch)
 * is settled at most once whatever retries or replays happen; a re-placed task has a new epoch and its own
 * settlement. Each entry's `atMs` is the allocation's end, so a retried write is byte-identical and periods
 * (invoices, statements) are stable.
 */
import { costForGpuMillis, type Micros, splitFee } from "@capa/domain";

export type LedgerEntryKind = "charge" | "payout" | "fee";
export const LEDGER_ENTRY_KINDS: readonly LedgerEntryKind[] = ["charge", "payout", "fee"];

/** A finished allocation, as the scheduler hands it to the ledger. */
export interface Settlement {
  tenant: string;
  jobId: string;
  taskId: string;
  epoch: number;
  agentId: string;
  provider: string;
  region: string;
  gpuModel: string;
  gpuIndices: number[];
  /** Locked at placement. */
  pricePerGpuHour: Micros;
  /** The metered window (see metering.ts). */
  startMs: number;
  endMs: number;
  gpuMilliseconds: number;
  interruptible: boolean;
  /** "succeeded", "failed", "cancelled", "preempted", "lost", "budget-exhausted", ... */
  endReason: string;
}

export interface LedgerEntry extends Settlement {
  id: string;
  kind: LedgerEntryKind;
  amount: Micros;
  feeBasisPoints: number;
  atMs: number;
  receiptId: string;
}

export function entryId(kind: LedgerEntryKind, taskId: string, epoch: number): string {
  return `${kind}:${taskId}:${epoch}`;
}

export function receiptIdFor(taskId: string, epoch: number): string {
  return `rcpt:${taskId}:${epoch}`;
}

export interface SettlementEntries {
  charge: LedgerEntry;
  fee: LedgerEntry;
  payout: LedgerEntry;
}

export function settlementEntries(settlement: Settlement, feeBasisPoints: number): SettlementEntries {
  const charge = costForGpuMillis(settlement.pricePerGpuHour, settlement.gpuMilliseconds);
  const split = splitFee(charge, feeBasisPoints);
  const entry = (kind: LedgerEntryKind, amount: Micros): LedgerEntry => ({
    ...settlement,
    gpuIndices: [...settlement.gpuIndices],
    id: entryId(kind, settlement.taskId, settlement.epoch),
    kind,
    amount,
    feeBasisPoints,
    atMs: settlement.endMs,
    receiptId: receiptIdFor(settlement.taskId, settlement.epoch),
  });
  return { charge: entry("charge", charge), fee: entry("fee", split.fee), payout: entry("payout", split.payout) };
}

/** First occurrence of each id wins: the ledger's read-side guard against a duplicate that slipped in. */
export function dedupeEntries<T extends { id: string }>(entries: Iterable<T>): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const e of entries) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  return out;
}

/** [fromMs, toMs): an entry belongs to the period its allocation ended in. */
export function inPeriod(atMs: number, fromMs: number, toMs: number): boolean {
  return atMs >= fromMs && atMs < toMs;
}

export interface InvoiceLine {
  jobId: string;
  allocations: number;
  gpuMilliseconds: number;
  amount: Micros;
  firstStartMs: number;
  lastEndMs: number;
  charges: LedgerEntry[];
}

export interface Invoice {
  tenant: string;
  fromMs: number;
  toMs: number;
  lines: InvoiceLine[];
  total: Micros;
}

/** The tenant's charges in [fromMs, toMs), one line per job, jobs in order of their first start. */
export function invoiceFrom(
  entries: Iterable<LedgerEntry>,
  tenant: string,
  fromMs: number,
  toMs: number,
  jobId = "",
): Invoice {
  const lines = new Map<string, InvoiceLine>();
  for (const e of dedupeEntries(entries)) {
    if (e.kind !== "charge" || e.tenant !== tenant || !inPeriod(e.atMs, fromMs, toMs)) continue;
    if (jobId && e.jobId !== jobId) continue;
    const line = lines.get(e.jobId) ?? {
      jobId: e.jobId,
      allocations: 0,
      gpuMilliseconds: 0,
      amount: 0,
      firstStartMs: e.startMs,
      lastEndMs: e.endMs,
      charges: [],
    };
    line.allocations += 1;
    line.gpuMilliseconds += e.gpuMilliseconds;
    line.amount += e.amount;
    line.firstStartMs = Math.min(line.firstStartMs, e.startMs);
    line.lastEndMs = Math.max(line.lastEndMs, e.endMs);
    line.charges.push(e);
    lines.set(e.jobId, line);
  }
  const sorted = [...lines.values()].sort((a, b) => a.firstStartMs - b.firstStartMs || (a.jobId < b.jobId ? -1 : 1));
  return { tenant, fromMs, toMs, lines: sorted, total: sorted.reduce((n, l) => n + l.amount, 0) };
}

export interface EarningsLine {
  agentId: string;
  jobId: string;
  taskId: string;
  epoch: number;
  gpuModel: string;
  gpuMilliseconds: number;
  pricePerGpuHour: Micros;
  /** gross = fee + payout exactly. */
  gross: Micros;
  fee: Micros;
  payout: Micros;
  startMs: number;
  endMs: number;
}

export interface Earnings {
  agentId: string;
  provider: string;
  fromMs: number;
  toMs: number;
  lines: EarningsLine[];
  gross: Micros;
  fee: Micros;
  payout: Micros;
}

/**
 * A provider's statement for [fromMs, toMs): one line per allocation, from the payout and fee entries (the
 * gross is their sum, which equals the charge by construction). Select by agent, by provider, or both.
 */
export function earningsFrom(
  entries: Iterable<LedgerEntry>,
  who: { agentId?: string; provider?: string },
  fromMs: number,
  toMs: number,
): Earnings {
  const agentId = who.agentId ?? "";
  const provider = who.provider ?? "";
  const lines = new Map<string, EarningsLine>();
  for (const e of dedupeEntries(entries)) {
    if (e.kind === "charge" || !inPeriod(e.atMs, fromMs, toMs)) continue;
    if (agentId && e.agentId !== agentId) continue;
    if (provider && e.provider !== provider) continue;
    const key = `${e.taskId}:${e.epoch}`;
    const line = lines.get(key) ?? {
      agentId: e.agentId,
      jobId: e.jobId,
      taskId: e.taskId,
      epoch: e.epoch,
      gpuModel: e.gpuModel,
      gpuMilliseconds: e.gpuMilliseconds,
      pricePerGpuHour: e.pricePerGpuHour,
      gross: 0,
      fee: 0,
      payout: 0,
      startMs: e.startMs,
      endMs: e.endMs,
    };
    if (e.kind === "fee") line.fee += e.amount;
    else line.payout += e.amount;
    line.gross = line.fee + line.payout;
    lines.set(key, line);
  }
  const sorted = [...lines.values()].sort((a, b) => a.endMs - b.endMs || (a.taskId < b.taskId ? -1 : 1));
  const total = (f: (l: EarningsLine) => number) => sorted.reduce((n, l) => n + f(l), 0);
  return {
    agentId,
    provider,
    fromMs,
    toMs,
    lines: sorted,
    gross: total((l) => l.gross),
    fee: total((l) => l.fee),
    payout: total((l) => l.payout),
  };
}
