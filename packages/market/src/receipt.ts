/**
 * Receipt contents and their canonical form, pure. Signing and verifying (node:crypto, Ed25519) live in
 * @capa/ledger; this file fixes WHAT is signed so every implementation agrees byte for byte: the canonical
 * JSON of exactly the `ReceiptBody` fields (keys sorted by code unit, no whitespace, integers only).
 */
import { costForGpuMillis, type Micros } from "@capa/domain";
import type { SettlementEntries } from "./settlement.js";

export interface ReceiptBody {
  receiptId: string;
  jobId: string;
  taskId: string;
  tenant: string;
  agentId: string;
  gpuIndices: number[];
  gpuModel: string;
  startMs: number;
  endMs: number;
  gpuMilliseconds: number;
  pricePerGpuHour: Micros;
  amount: Micros;
  fee: Micros;
  payout: Micros;
  epoch: number;
  issuedAtMs: number;
}

export interface SignedReceipt extends ReceiptBody {
  /** Ed25519 signature of `receiptSigningPayload(body)`, base64. */
  signature: string;
  /** First 16 hex digits of SHA-256 over the public key (DER, SPKI): which key to verify with. */
  keyId: string;
}

export const RECEIPT_BODY_FIELDS = [
  "receiptId",
  "jobId",
  "taskId",
  "tenant",
  "agentId",
  "gpuIndices",
  "gpuModel",
  "startMs",
  "endMs",
  "gpuMilliseconds",
  "pricePerGpuHour",
  "amount",
  "fee",
  "payout",
  "epoch",
  "issuedAtMs",
] as const satisfies readonly (keyof ReceiptBody)[];

export function receiptBody(entries: SettlementEntries, issuedAtMs: number): ReceiptBody {
  const c = entries.charge;
  return {
    receiptId: c.receiptId,
    jobId: c.jobId,
    taskId: c.taskId,
    tenant: c.tenant,
    agentId: c.agentId,
    gpuIndices: [...c.gpuIndices],
    gpuModel: c.gpuModel,
    startMs: c.startMs,
    endMs: c.endMs,
    gpuMilliseconds: c.gpuMilliseconds,
    pricePerGpuHour: c.pricePerGpuHour,
    amount: c.amount,
    fee: entries.fee.amount,
    payout: entries.payout.amount,
    epoch: c.epoch,
    issuedAtMs,
  };
}

export class CanonicalJsonError extends Error {
  override name = "CanonicalJsonError";
}

/** JSON with object keys sorted recursively and no whitespace; rejects non-integers and non-JSON values. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new CanonicalJsonError(`only safe integers are canonical, got ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  throw new CanonicalJsonError(`not a JSON value: ${typeof value}`);
}

/** The bytes the scheduler signs: the canonical JSON of the body fields only (signature and keyId excluded). */
export function receiptSigningPayload(receipt: ReceiptBody): Uint8Array {
  const body: Record<string, unknown> = {};
  for (const field of RECEIPT_BODY_FIELDS) body[field] = receipt[field];
  return new TextEncoder().encode(canonicalJson(body));
}

/**
 * Offline arithmetic check of a receipt, independent of the signature: the amount is what the price and GPU
 * time cost under the documented rounding, it splits exactly into fee + payout, and the GPU time fits the
 * window. Returns what is wrong, or undefined.
 */
export function receiptArithmeticProblem(r: ReceiptBody): string | undefined {
  const expected = costForGpuMillis(r.pricePerGpuHour, r.gpuMilliseconds);
  if (r.amount !== expected) return `amount ${r.amount} ≠ price × GPU time = ${expected}`;
  if (r.fee + r.payout !== r.amount) return `fee ${r.fee} + payout ${r.payout} ≠ amount ${r.amount}`;
  if (r.fee < 0 || r.payout < 0) return "negative fee or payout";
  if (r.endMs < r.startMs) return "window ends before it starts";
  if (r.gpuMilliseconds > r.gpuIndices.length * (r.endMs - r.startMs)) {
    return `${r.gpuMilliseconds} GPU-ms do not fit ${r.gpuIndices.length} GPU(s) × ${r.endMs - r.startMs} ms`;
  }
  return undefined;
}
