/**
 * The ledger: an append-only JetStream stream of charges, payouts and fees, plus signed receipts. Balances,
 * invoices and statements are always derived by reading it; nothing is a mutable counter.
 *
 * Settling one finished allocation writes, in order: charge, fee, payout, receipt. Every write is
 * first-writer-wins (see stream-io.ts), and each step builds on what is STORED, not on what this call
 * computed: if a charge from an earlier attempt exists, the fee and payout split that charge. So a crash
 * between writes, a replay after a restart, a retry from a second scheduler, or a fee change in between still
 * yields exactly one charge, one fee and one payout per allocation with charge = fee + payout. The receipt is
 * written last and doubles as the "settled" marker (`isSettled`).
 */
import { type Micros, splitFee } from "@capa/domain";
import {
  dedupeEntries,
  type Earnings,
  earningsFrom,
  entryId,
  type Invoice,
  invoiceFrom,
  type LedgerEntry,
  type LedgerEntryKind,
  receiptBody,
  receiptIdFor,
  type Settlement,
  type SettlementEntries,
  type SignedReceipt,
  settlementEntries,
} from "@capa/market";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeLedgerEntry, decodeReceipt, encodeLedgerEntry, encodeReceipt } from "./codec.js";
import { type SigningKey, signReceipt } from "./receipts.js";
import { ensureLedgerStream, type LedgerStreamOptions, publishOnce, readAll, readOne } from "./stream-io.js";
import { entrySubject, ledgerFilters, receiptSubject } from "./subjects.js";

export interface LedgerOptions extends LedgerStreamOptions {
  /** Platform fee in basis points (0..10000) of each charge, rounded down. */
  feeBasisPoints: number;
  signingKey: SigningKey;
  /** The injected clock: receipts' issuedAtMs. */
  now: () => number;
}

export interface SettlementRecord {
  entries: SettlementEntries;
  receipt: SignedReceipt;
  /** True when this call found the allocation already settled and wrote nothing. */
  alreadySettled: boolean;
  /** Which writes this call stored (the others existed already). */
  stored: Record<LedgerEntryKind | "receipt", boolean>;
}

export interface ReceiptQuery {
  tenant?: string;
  agentId?: string;
  jobId?: string;
  fromMs?: number;
  /** 0 or absent = no upper bound. */
  toMs?: number;
  limit?: number;
}

export class InvalidReceiptIdError extends Error {
  override name = "InvalidReceiptIdError";
}

export async function openLedger(nc: NatsConnection, options: LedgerOptions): Promise<Ledger> {
  const jsm = await jetstreamManager(nc);
  await ensureLedgerStream(jsm, options);
  return new Ledger(jetstream(nc), jsm, options);
}

export class Ledger {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: LedgerOptions,
  ) {
    splitFee(0, options.feeBasisPoints); // validates the fee once, at start
  }

  get feeBasisPoints(): number {
    return this.options.feeBasisPoints;
  }

  signingKeyInfo(): { publicKeyPem: string; keyId: string; algorithm: "ed25519" } {
    return {
      publicKeyPem: this.options.signingKey.publicKeyPem,
      keyId: this.options.signingKey.keyId,
      algorithm: "ed25519",
    };
  }

  /** Appends one entry once; returns the entry now stored under its id (this one, or an earlier write's). */
  async append(entry: LedgerEntry): Promise<{ stored: boolean; entry: LedgerEntry }> {
    const subject = entrySubject(entry);
    const outcome = await publishOnce(this.js, subject, entry.id, encodeLedgerEntry(entry));
    if (outcome.stored) return { stored: true, entry };
    const existing = await readOne(this.jsm, subject);
    return { stored: false, entry: existing ? decodeLedgerEntry(existing) : entry };
  }

  async getReceiptOf(taskId: string, epoch: number): Promise<SignedReceipt | undefined> {
    const found = await readAll(this.js, this.jsm, ledgerFilters.receiptOfTask(taskId, epoch));
    return found[0] ? decodeReceipt(found[0]) : undefined;
  }

  async isSettled(taskId: string, epoch: number): Promise<boolean> {
    return (await this.getReceiptOf(taskId, epoch)) !== undefined;
  }

  /**
   * Records a finished allocation: charge, fee, payout and a signed receipt, each exactly once. No read comes
   * first: each write is first-writer-wins and returns what is stored, so settling an allocation settled before
   * (a replay after a restart, a second scheduler) stores nothing and returns the stored entries and receipt.
   * That case costs four refused writes and their reads instead of one read; the common case (not settled yet)
   * saves the read of the receipt on every settlement.
   */
  async recordSettlement(settlement: Settlement): Promise<SettlementRecord> {
    const computed = settlementEntries(settlement, this.options.feeBasisPoints);
    const charge = await this.append(computed.charge);
    // Split what is stored: an earlier attempt's charge wins over this call's.
    const split = splitFee(charge.entry.amount, this.options.feeBasisPoints);
    const basis = { ...charge.entry, kind: "fee" as const };
    const fee = await this.append({
      ...basis,
      id: entryId("fee", basis.taskId, basis.epoch),
      feeBasisPoints: this.options.feeBasisPoints,
      amount: split.fee,
    });
    const payoutAmount: Micros = charge.entry.amount - fee.entry.amount;
    const payout = await this.append({
      ...basis,
      kind: "payout",
      id: entryId("payout", basis.taskId, basis.epoch),
      feeBasisPoints: fee.entry.feeBasisPoints,
      amount: payoutAmount,
    });
    const entries = { charge: charge.entry, fee: fee.entry, payout: payout.entry };
    const signed = signReceipt(receiptBody(entries, this.options.now()), this.options.signingKey);
    const subject = receiptSubject(signed);
    const outcome = await publishOnce(this.js, subject, signed.receiptId, encodeReceipt(signed));
    let receipt = signed;
    if (!outcome.stored) {
      const existing = await readOne(this.jsm, subject);
      if (existing) receipt = decodeReceipt(existing);
    }
    const stored = { charge: charge.stored, fee: fee.stored, payout: payout.stored, receipt: outcome.stored };
    // The receipt is written last, so a stored receipt means every entry was stored before (entries are never
    // deleted): nothing of this call stored = settled before (by an earlier attempt, or a concurrent one).
    return { entries, receipt, alreadySettled: !Object.values(stored).some(Boolean), stored };
  }

  /** The charge stored for one allocation: an exact-subject read, whatever the size of the ledger. */
  async chargeOf(tenant: string, taskId: string, epoch: number): Promise<LedgerEntry | undefined> {
    const stored = await readOne(this.jsm, entrySubject({ kind: "charge", tenant, agentId: "", taskId, epoch }));
    return stored ? decodeLedgerEntry(stored) : undefined;
  }

  /** Every entry on subjects matching `filter` (see `ledgerFilters`), de-duplicated by id. */
  async entries(filter: string): Promise<LedgerEntry[]> {
    return dedupeEntries((await readAll(this.js, this.jsm, filter)).map(decodeLedgerEntry));
  }

  /** The tenant's charges in [fromMs, toMs), grouped by job. */
  async invoice(tenant: string, fromMs: number, toMs: number, jobId = ""): Promise<Invoice> {
    return invoiceFrom(await this.entries(ledgerFilters.chargesOf(tenant)), tenant, fromMs, toMs, jobId);
  }

  /** A provider's statement: one agent's entries, or every agent's of a provider. */
  async earnings(who: { agentId?: string; provider?: string }, fromMs: number, toMs: number): Promise<Earnings> {
    const filters = who.agentId
      ? [ledgerFilters.payoutsOf(who.agentId), ledgerFilters.feesOf(who.agentId)]
      : [ledgerFilters.allPayouts, ledgerFilters.allFees];
    const entries = (await Promise.all(filters.map((f) => this.entries(f)))).flat();
    return earningsFrom(entries, who, fromMs, toMs);
  }

  /** What the tenant has been charged, all time: the balance it owes, derived from the stream. */
  async tenantCharges(tenant: string): Promise<Micros> {
    return (await this.entries(ledgerFilters.chargesOf(tenant))).reduce((n, e) => n + e.amount, 0);
  }

  /** What an agent has earned (payouts), all time. */
  async agentPayouts(agentId: string): Promise<Micros> {
    return (await this.entries(ledgerFilters.payoutsOf(agentId))).reduce((n, e) => n + e.amount, 0);
  }

  /** A receipt by id ("rcpt:<taskId>:<epoch>"). */
  async getReceipt(receiptId: string): Promise<SignedReceipt | undefined> {
    const match = /^rcpt:(.+):(\d+)$/.exec(receiptId);
    if (!match) throw new InvalidReceiptIdError(`receipt ids look like rcpt:<taskId>:<epoch>, got ${receiptId}`);
    const receipt = await this.getReceiptOf(match[1]!, Number(match[2]));
    return receipt && receipt.receiptId === receiptIdFor(match[1]!, Number(match[2])) ? receipt : undefined;
  }

  /** Receipts by tenant and/or agent (and job), ending in [fromMs, toMs), oldest first. */
  async listReceipts(query: ReceiptQuery): Promise<SignedReceipt[]> {
    const filter = query.tenant
      ? ledgerFilters.receiptsOfTenant(query.tenant)
      : query.agentId
        ? ledgerFilters.receiptsOfAgent(query.agentId)
        : ledgerFilters.allReceipts;
    const from = query.fromMs ?? 0;
    const to = query.toMs && query.toMs > 0 ? query.toMs : Number.POSITIVE_INFINITY;
    const seen = new Set<string>();
    const receipts = (await readAll(this.js, this.jsm, filter)).map(decodeReceipt).filter((r) => {
      if (seen.has(r.receiptId)) return false;
      seen.add(r.receiptId);
      if (query.agentId && r.agentId !== query.agentId) return false;
      if (query.jobId && r.jobId !== query.jobId) return false;
      return r.endMs >= from && r.endMs < to;
    });
    return query.limit && query.limit > 0 ? receipts.slice(0, query.limit) : receipts;
  }
}
