/**
 * `capa receipt verify`, the pure part: a receipt file's text and a public key → the verdict, the line to
 * print and the exit status. The CLI's one convention holds here too (2 is kept for usage errors only): 0 = valid,
 * 1 = NOT valid (altered, signed by another key, amounts that do not add up, not a receipt at all) or could not
 * check (no usable key, unreadable file); `reason` and the message tell the two apart for scripts.
 */
import { parseReceiptJson, ReceiptFormatError, type ReceiptRejection, verifyReceipt } from "@capa/ledger";
import type { SignedReceipt } from "@capa/market";
import { formatAmount } from "./format.js";
import { formatGpuHours } from "./render-billing.js";

export const RECEIPT_VALID = 0;
export const RECEIPT_INVALID = 1;
/** A runtime failure like any other (exit 1), not a usage error: the command line was fine. */
export const RECEIPT_UNCHECKED = 1;

export interface ReceiptCheck {
  valid: boolean;
  exitCode: typeof RECEIPT_VALID | typeof RECEIPT_INVALID | typeof RECEIPT_UNCHECKED;
  /** False when the receipt could not be checked at all (no usable key): neither valid nor shown invalid. */
  checked: boolean;
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
      checked: true,
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
      checked: true,
      message: `valid: receipt ${receipt.receiptId} signed by key ${verdict.keyId}: ${summary(receipt)}`,
      receiptId: receipt.receiptId,
      keyId: verdict.keyId,
    };
  }
  if (verdict.reason === "malformed-key") {
    return {
      valid: false,
      exitCode: RECEIPT_UNCHECKED,
      checked: false,
      message: `cannot check receipt ${receipt.receiptId}: the public key is not an Ed25519 PEM key: ${verdict.detail}`,
      receiptId: receipt.receiptId,
      reason: verdict.reason,
      detail: verdict.detail,
    };
  }
  return {
    valid: false,
    exitCode: RECEIPT_INVALID,
    checked: true,
    message: `receipt ${receipt.receiptId} is NOT valid: ${verdict.reason}: ${verdict.detail}`,
    receiptId: receipt.receiptId,
    keyId: receipt.keyId,
    reason: verdict.reason,
    detail: verdict.detail,
  };
}
