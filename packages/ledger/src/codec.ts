/**
 * Ledger values ↔ protobuf (capa.v1 billing.proto). The stream stores protobuf; the gRPC BillingService
 * answers with the same messages, so the scheduler's server only calls these converters.
 */
import * as pb from "@capa/api";
import type {
  BudgetSummary,
  Earnings,
  Invoice,
  LedgerEntry,
  LedgerEntryKind,
  SignedReceipt,
  TenantLimits,
} from "@capa/market";

const KIND_TO_PB: Record<LedgerEntryKind, pb.LedgerEntryKind> = {
  charge: pb.LedgerEntryKind.LEDGER_ENTRY_KIND_CHARGE,
  payout: pb.LedgerEntryKind.LEDGER_ENTRY_KIND_PAYOUT,
  fee: pb.LedgerEntryKind.LEDGER_ENTRY_KIND_FEE,
};
const KIND_FROM_PB = new Map(Object.entries(KIND_TO_PB).map(([k, v]) => [v as number, k as LedgerEntryKind]));

export class CorruptLedgerEntryError extends Error {
  override name = "CorruptLedgerEntryError";
}

export function ledgerEntryToPb(e: LedgerEntry): pb.LedgerEntry {
  return {
    id: e.id,
    kind: KIND_TO_PB[e.kind],
    tenant: e.tenant,
    jobId: e.jobId,
    taskId: e.taskId,
    epoch: e.epoch,
    agentId: e.agentId,
    provider: e.provider,
    region: e.region,
    gpuModel: e.gpuModel,
    gpuIndices: [...e.gpuIndices],
    gpuMilliseconds: e.gpuMilliseconds,
    priceMicrosPerGpuHour: e.pricePerGpuHour,
    amountMicros: e.amount,
    feeBasisPoints: e.feeBasisPoints,
    startUnixMs: e.startMs,
    endUnixMs: e.endMs,
    atUnixMs: e.atMs,
    interruptible: e.interruptible,
    endReason: e.endReason,
    receiptId: e.receiptId,
  };
}

export function ledgerEntryFromPb(e: pb.LedgerEntry): LedgerEntry {
  const kind = KIND_FROM_PB.get(e.kind);
  if (!kind) throw new CorruptLedgerEntryError(`ledger entry ${e.id} has unknown kind ${e.kind}`);
  return {
    id: e.id,
    kind,
    tenant: e.tenant,
    jobId: e.jobId,
    taskId: e.taskId,
    epoch: e.epoch,
    agentId: e.agentId,
    provider: e.provider,
    region: e.region,
    gpuModel: e.gpuModel,
    gpuIndices: [...e.gpuIndices],
    gpuMilliseconds: e.gpuMilliseconds,
    pricePerGpuHour: e.priceMicrosPerGpuHour,
    amount: e.amountMicros,
    feeBasisPoints: e.feeBasisPoints,
    startMs: e.startUnixMs,
    endMs: e.endUnixMs,
    atMs: e.atUnixMs,
    interruptible: e.interruptible,
    endReason: e.endReason,
    receiptId: e.receiptId,
  };
}

export const encodeLedgerEntry = (e: LedgerEntry): Uint8Array => pb.LedgerEntry.encode(ledgerEntryToPb(e)).finish();
export const decodeLedgerEntry = (bytes: Uint8Array): LedgerEntry => ledgerEntryFromPb(pb.LedgerEntry.decode(bytes));

export function receiptToPb(r: SignedReceipt): pb.Receipt {
  return {
    receiptId: r.receiptId,
    jobId: r.jobId,
    taskId: r.taskId,
    tenant: r.tenant,
    agentId: r.agentId,
    gpuIndices: [...r.gpuIndices],
    gpuModel: r.gpuModel,
    startUnixMs: r.startMs,
    endUnixMs: r.endMs,
    gpuMilliseconds: r.gpuMilliseconds,
    priceMicrosPerGpuHour: r.pricePerGpuHour,
    amountMicros: r.amount,
    feeMicros: r.fee,
    payoutMicros: r.payout,
    epoch: r.epoch,
    issuedAtUnixMs: r.issuedAtMs,
    signature: Buffer.from(r.signature, "base64"),
    keyId: r.keyId,
  };
}

export function receiptFromPb(r: pb.Receipt): SignedReceipt {
  return {
    receiptId: r.receiptId,
    jobId: r.jobId,
    taskId: r.taskId,
    tenant: r.tenant,
    agentId: r.agentId,
    gpuIndices: [...r.gpuIndices],
    gpuModel: r.gpuModel,
    startMs: r.startUnixMs,
    endMs: r.endUnixMs,
    gpuMilliseconds: r.gpuMilliseconds,
    pricePerGpuHour: r.priceMicrosPerGpuHour,
    amount: r.amountMicros,
    fee: r.feeMicros,
    payout: r.payoutMicros,
    epoch: r.epoch,
    issuedAtMs: r.issuedAtUnixMs,
    signature: Buffer.from(r.signature).toString("base64"),
    keyId: r.keyId,
  };
}

export const encodeReceipt = (r: SignedReceipt): Uint8Array => pb.Receipt.encode(receiptToPb(r)).finish();
export const decodeReceipt = (bytes: Uint8Array): SignedReceipt => receiptFromPb(pb.Receipt.decode(bytes));

export function invoiceToPb(invoice: Invoice): pb.GetInvoiceResponse {
  return {
    tenant: invoice.tenant,
    fromUnixMs: invoice.fromMs,
    toUnixMs: invoice.toMs,
    lines: invoice.lines.map((l) => ({
      jobId: l.jobId,
      allocations: l.allocations,
      gpuMilliseconds: l.gpuMilliseconds,
      amountMicros: l.amount,
      firstStartUnixMs: l.firstStartMs,
      lastEndUnixMs: l.lastEndMs,
      charges: l.charges.map(ledgerEntryToPb),
    })),
    totalMicros: invoice.total,
  };
}

export function earningsToPb(earnings: Earnings): pb.GetEarningsResponse {
  return {
    agentId: earnings.agentId,
    provider: earnings.provider,
    fromUnixMs: earnings.fromMs,
    toUnixMs: earnings.toMs,
    lines: earnings.lines.map((l) => ({
      agentId: l.agentId,
      jobId: l.jobId,
      taskId: l.taskId,
      epoch: l.epoch,
      gpuModel: l.gpuModel,
      gpuMilliseconds: l.gpuMilliseconds,
      priceMicrosPerGpuHour: l.pricePerGpuHour,
      grossMicros: l.gross,
      feeMicros: l.fee,
      payoutMicros: l.payout,
      startUnixMs: l.startMs,
      endUnixMs: l.endMs,
    })),
    grossMicros: earnings.gross,
    feeMicros: earnings.fee,
    payoutMicros: earnings.payout,
  };
}

export function tenantLimitsToPb(tenant: string, limits: TenantLimits): pb.TenantLimits {
  return {
    tenant,
    hourlyCapMicros: limits.hourlyCap,
    monthlyCapMicros: limits.monthlyCap,
    updatedAtUnixMs: limits.updatedAtMs,
    updatedBy: limits.updatedBy ?? "",
  };
}

export function tenantBudgetToPb(tenant: string, summary: BudgetSummary): pb.GetTenantLimitsResponse {
  return {
    limits: tenantLimitsToPb(tenant, summary.limits),
    month: summary.month,
    monthSettledMicros: summary.settled,
    reservedMicros: summary.reserved,
    availableMicros: summary.available ?? 0,
    hourlyCommittedMicros: summary.hourlyCommitted,
  };
}
