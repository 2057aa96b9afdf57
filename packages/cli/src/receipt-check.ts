/**
 * `capa receipt verify`, the pure part: a receipt file's text and a public key → the verdict, the line to
 * print and the exit status. Like `gpg --verify`: 0 = valid, 1 = NOT valid (altered, signed by another key,
 * amounts that do not add up, not a receipt at all), 2 = could not check (no usable key, unreadable file).
 */
import { parseReceiptJson, ReceiptFormatError, type ReceiptRejection, verifyReceipt } from "@capa/ledger";
import type { SignedReceipt } from "@capa/market";
import { formatAmount } from "./format.js";
import { formatGpuHours } from "./render-billing.js";

export const RECEIPT_VALID = 0;
export const RECEIPT_INVALID = 1;
export const RECEIPT_UNCHECKED = 2;

export interface ReceiptCheck {
  valid: boolean;
  exitCode: typeof RECEIPT_VALID | typeof RECEIPT_INVALID | typeof RECEIPT_UNCHECKED;
  /** One line: "valid: …" or why not. */
  message: string;
  receiptId?: string;
  /** The key that verified it (valid) or that the receipt names (invalid). */
  keyId?: string;
  reason?: ReceiptRejection | "unreadable";
  detail?: string;
}

/** What a valid receipt says, in one line. */
function summary(r: SignedReceipt): string {
  return (
    `${formatAmount(r.amount)} for ${formatGpuHours(r.gpuMilliseconds)} GPU-h of ${r.gpuIndices.length}x${r.gpuModel} ` +
    `on ${r.agentId}, job ${r.jobId}, tenant ${r.tenant} (fee ${formatAmount(r.fee)}, payout ${formatAmount(r.payout)})`
  );
}

export function checkReceipt(text: string, publicKeyPem: string): ReceiptCheck {
  let receipt: SignedReceipt;
  try {
    receipt = parseReceiptJson(text);
  } catch (err) {
    if (!(err instanceof ReceiptFormatError)) throw err;
    return {
      valid: false,
      exitCode: RECEIPT_INVALID,
      message: `not valid: malformed-receipt: ${err.message}`,
      reason: "malformed-receipt",
      detail: err.message,
    };
  }
  const verdict = verifyReceipt(receipt, publicKeyPem);
  if (verdict.ok) {
    return {
      valid: true,
      exitCode: RECEIPT_VALID,
      message: `valid: receipt ${receipt.receiptId} signed by key ${verdict.keyId}: ${summary(receipt)}`,
      receiptId: receipt.receiptId,
      keyId: verdict.keyId,
    };
  }
  if (verdict.reason === "malformed-key") {
    return {
      valid: false,
      exitCode: RECEIPT_UNCHECKED,
      message: `cannot check receipt ${receipt.receiptId}: the public key is not an Ed25519 PEM key: ${verdict.detail}`,
      receiptId: receipt.receiptId,
      reason: verdict.reason,
      detail: verdict.detail,
    };
  }
  return {
    valid: false,
    exitCode: RECEIPT_INVALID,
    message: `receipt ${receipt.receiptId} is NOT valid: ${verdict.reason}: ${verdict.detail}`,
    receiptId: receipt.receiptId,
    keyId: receipt.keyId,
    reason: verdict.reason,
    detail: verdict.detail,
  };
}
