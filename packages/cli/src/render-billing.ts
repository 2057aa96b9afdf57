/**
 * The billing verbs' answers (`capa bill`, `earnings`, `receipt list`, `tenant limits`) for people and for
 * scripts. Pure: the clock is a parameter. JSON keeps the wire shapes (camelCase proto fields, money as
 * integer micros in `*Micros` fields), with ledger entry kinds as lower-case names instead of enum numbers;
 * receipts are the signed receipt documents (`receiptFromPb`), the same shape `capa receipt get` writes.
 */
import * as api from "@capa/api";
import { receiptFromPb } from "@capa/ledger";
import type { SignedReceipt } from "@capa/market";
import { type Cell, formatAge, formatAmount, formatPrice, renderFields, renderTable } from "./format.js";
import { describePeriod, formatInstant } from "./period.js";

const MS_PER_HOUR = 3_600_000;

/**
 * GPU-milliseconds as GPU-hours with up to 4 decimals ("0.5", "12", "0.0006"); a non-zero amount too small
 * for that shows as "<0.0001", never as a misleading "0".
 */
export function formatGpuHours(gpuMilliseconds: number): string {
  if (gpuMilliseconds <= 0) return "0";
  const text = (gpuMilliseconds / MS_PER_HOUR).toFixed(4).replace(/\.?0+$/, "");
  return text === "0" ? "<0.0001" : text;
}

/** "2xH100-80GB" for an allocation; "-" when it held no GPU. */
function gpusCell(count: number, model: string): string {
  if (count === 0) return "-";
  return model ? `${count}x${model}` : String(count);
}

function entryKind(kind: api.LedgerEntryKind): string {
  switch (kind) {
    case api.LedgerEntryKind.LEDGER_ENTRY_KIND_CHARGE:
      return "charge";
    case api.LedgerEntryKind.LEDGER_ENTRY_KIND_PAYOUT:
      return "payout";
    case api.LedgerEntryKind.LEDGER_ENTRY_KIND_FEE:
      return "fee";
    default:
      return "unspecified";
  }
}

export function invoiceJson(invoice: api.GetInvoiceResponse) {
  return {
    ...invoice,
    lines: invoice.lines.map((line) => ({
      ...line,
      charges: line.charges.map((c) => ({ ...c, kind: entryKind(c.kind) })),
    })),
  };
}

/**
 * An invoice: a header with the tenant, window and total, then one row per charged allocation (job, task,
 * agent, GPUs, GPU-hours, locked price, amount), a subtotal under every job with several, and the total.
 */
export function renderInvoice(invoice: api.GetInvoiceResponse): string {
  const header = renderFields([
    ["tenant", invoice.tenant],
    ["period", describePeriod({ fromMs: invoice.fromUnixMs, toMs: invoice.toUnixMs })],
    ["jobs", invoice.lines.length],
    ["total", formatAmount(invoice.totalMicros)],
  ]);
  if (invoice.lines.length === 0) return `${header}\n\nno charges`;
  const rows: Cell[][] = [];
  for (const line of invoice.lines) {
    if (line.charges.length === 0) {
      // A line without its entries still has its totals.
      rows.push([line.jobId, "-", "-", "-", formatGpuHours(line.gpuMilliseconds), "", formatAmount(line.amountMicros)]);
      continue;
    }
    for (const c of line.charges) {
      rows.push([
        line.jobId,
        c.taskId,
        c.agentId,
        gpusCell(c.gpuIndices.length, c.gpuModel),
        formatGpuHours(c.gpuMilliseconds),
        formatPrice(c.priceMicrosPerGpuHour),
        formatAmount(c.amountMicros),
      ]);
    }
    if (line.charges.length > 1) {
      rows.push([
        "",
        `subtotal (${line.allocations} allocations)`,
        "",
        "",
        formatGpuHours(line.gpuMilliseconds),
        "",
        formatAmount(line.amountMicros),
      ]);
    }
  }
  const gpuMs = invoice.lines.reduce((n, l) => n + l.gpuMilliseconds, 0);
  rows.push(["TOTAL", "", "", "", formatGpuHours(gpuMs), "", formatAmount(invoice.totalMicros)]);
  const table = renderTable(["JOB", "TASK", "AGENT", "GPUS", "GPU-H", "$/GPU-H", "AMOUNT"], rows, {
    rightAlign: [4, 5, 6],
  });
  return `${header}\n\n${table}`;
}

/** Whose statement this is, for the header. */
function earningsSubject(e: api.GetEarningsResponse): [string, string] {
  if (e.agentId) return ["agent", e.agentId];
  if (e.provider) return ["provider", e.provider];
  return ["agents", "all"];
}

/** A provider statement: gross (what tenants paid), the platform fee and the payout, per allocation and in total. */
export function renderEarnings(e: api.GetEarningsResponse): string {
  const header = renderFields([
    earningsSubject(e),
    ["period", describePeriod({ fromMs: e.fromUnixMs, toMs: e.toUnixMs })],
    ["allocations", e.lines.length],
    ["gross", formatAmount(e.grossMicros)],
    ["fee", formatAmount(e.feeMicros)],
    ["payout", formatAmount(e.payoutMicros)],
  ]);
  if (e.lines.length === 0) return `${header}\n\nno earnings`;
  const rows: Cell[][] = e.lines.map((l) => [
    l.agentId,
    l.jobId,
    l.taskId,
    l.gpuModel || "-",
    formatGpuHours(l.gpuMilliseconds),
    formatPrice(l.priceMicrosPerGpuHour),
    formatAmount(l.grossMicros),
    formatAmount(l.feeMicros),
    formatAmount(l.payoutMicros),
  ]);
  rows.push([
    "TOTAL",
    "",
    "",
    "",
    "",
    "",
    formatAmount(e.grossMicros),
    formatAmount(e.feeMicros),
    formatAmount(e.payoutMicros),
  ]);
  const table = renderTable(["AGENT", "JOB", "TASK", "MODEL", "GPU-H", "$/GPU-H", "GROSS", "FEE", "PAYOUT"], rows, {
    rightAlign: [4, 5, 6, 7, 8],
  });
  return `${header}\n\n${table}`;
}

export function receiptJson(receipt: api.Receipt): SignedReceipt {
  return receiptFromPb(receipt);
}

export function renderReceiptsTable(receipts: api.Receipt[]): string {
  if (receipts.length === 0) return "no receipts";
  const rows = receipts.map((r) => [
    r.receiptId,
    r.jobId,
    r.agentId,
    gpusCell(r.gpuIndices.length, r.gpuModel),
    formatGpuHours(r.gpuMilliseconds),
    formatPrice(r.priceMicrosPerGpuHour),
    formatAmount(r.amountMicros),
    r.endUnixMs ? formatInstant(r.endUnixMs) : "-",
  ]);
  return renderTable(["RECEIPT", "JOB", "AGENT", "GPUS", "GPU-H", "$/GPU-H", "AMOUNT", "ENDED"], rows, {
    rightAlign: [4, 5, 6],
  });
}

/** A cap for people: "$10.00", or "none" for 0 (no limit). */
function cap(micros: number): string {
  return micros > 0 ? formatAmount(micros) : "none";
}

export function renderTenantLimits(answer: api.GetTenantLimitsResponse, nowMs: number): string {
  const limits = answer.limits ?? api.TenantLimits.fromPartial({});
  const hourlyCap = limits.hourlyCapMicros ?? 0;
  const monthlyCap = limits.monthlyCapMicros ?? 0;
  const fields: [string, Cell][] = [
    ["tenant", limits.tenant],
    ["hourly cap", `${cap(hourlyCap)}${hourlyCap > 0 ? "/h" : ""}`],
    ["committed", `${formatAmount(answer.hourlyCommittedMicros)}/h (admitted, unfinished jobs)`],
    ["monthly cap", cap(monthlyCap)],
  ];
  if (answer.month) fields.push(["month", answer.month]);
  fields.push(["settled", formatAmount(answer.monthSettledMicros)]);
  fields.push(["reserved", formatAmount(answer.reservedMicros)]);
  fields.push(["available", monthlyCap > 0 ? formatAmount(answer.availableMicros) : "no monthly cap"]);
  const by = limits.updatedBy ? ` by ${limits.updatedBy}` : "";
  fields.push(["updated", limits.updatedAtUnixMs ? `${formatAge(limits.updatedAtUnixMs, nowMs)}${by}` : "never"]);
  return renderFields(fields);
}
