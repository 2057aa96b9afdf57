/**
 * Ed25519 receipts. The scheduler signs the canonical JSON of each receipt body (see @capa/market receipt.ts)
 * with its key; tenant and provider verify offline with the public key alone (`capa receipt verify`).
 * Verification also re-checks the arithmetic (amount = price × GPU time under the documented rounding,
 * amount = fee + payout), so a receipt that is signed but wrong is caught too.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  RECEIPT_BODY_FIELDS,
  type ReceiptBody,
  receiptArithmeticProblem,
  receiptSigningPayload,
  type SignedReceipt,
} from "@capa/market";

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM, what GetSigningKey returns and verifiers load. */
  publicKeyPem: string;
  keyId: string;
}

export class SigningKeyError extends Error {
  override name = "SigningKeyError";
}

/** First 16 hex digits of SHA-256 over the DER (SPKI) public key. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

function fromPrivateKey(privateKey: KeyObject): SigningKey {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new SigningKeyError(`signing key must be ed25519, got ${privateKey.asymmetricKeyType}`);
  }
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

export function generateSigningKey(): SigningKey {
  return fromPrivateKey(generateKeyPairSync("ed25519").privateKey);
}

export function signingKeyFromPem(privateKeyPem: string): SigningKey {
  try {
    return fromPrivateKey(createPrivateKey(privateKeyPem));
  } catch (cause) {
    if (cause instanceof SigningKeyError) throw cause;
    throw new SigningKeyError(`not a PEM private key: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Loads the PKCS#8 PEM private key at `path`, or creates one there (mode 0600, never overwriting: a concurrent
 * creator wins and both use its key) and writes the public key next to it as `<path>.pub`.
 */
export function loadOrCreateSigningKey(path: string): SigningKey {
  if (existsSync(path)) return signingKeyFromPem(readFileSync(path, "utf8"));
  const key = generateSigningKey();
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), {
      mode: 0o600,
      flag: "wx",
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return signingKeyFromPem(readFileSync(path, "utf8"));
    throw new SigningKeyError(`cannot write signing key to ${path}: ${(err as Error).message}`, { cause: err });
  }
  writeFileSync(`${path}.pub`, key.publicKeyPem, { mode: 0o644 });
  return key;
}

export function signReceipt(body: ReceiptBody, key: SigningKey): SignedReceipt {
  const signed: Record<string, unknown> = {};
  for (const field of RECEIPT_BODY_FIELDS) signed[field] = body[field];
  signed.signature = sign(null, receiptSigningPayload(body), key.privateKey).toString("base64");
  signed.keyId = key.keyId;
  return signed as unknown as SignedReceipt;
}

export type ReceiptRejection =
  | "malformed-key"
  | "malformed-receipt"
  | "key-id-mismatch"
  | "bad-signature"
  | "inconsistent-amounts";

export type ReceiptVerification = { ok: true; keyId: string } | { ok: false; reason: ReceiptRejection; detail: string };

/** Verifies a receipt offline against the scheduler's public key (SPKI PEM). Never throws. */
export function verifyReceipt(receipt: SignedReceipt, publicKeyPem: string): ReceiptVerification {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicKeyPem);
    if (publicKey.asymmetricKeyType !== "ed25519") throw new Error(`not ed25519: ${publicKey.asymmetricKeyType}`);
  } catch (err) {
    return { ok: false, reason: "malformed-key", detail: (err as Error).message };
  }
  const shape = receiptShapeProblem(receipt);
  if (shape) return { ok: false, reason: "malformed-receipt", detail: shape };
  const keyId = keyIdOf(publicKey);
  let valid: boolean;
  try {
    valid = verify(null, receiptSigningPayload(receipt), publicKey, Buffer.from(receipt.signature, "base64"));
  } catch (err) {
    return { ok: false, reason: "malformed-receipt", detail: (err as Error).message };
  }
  if (!valid) {
    const detail =
      receipt.keyId === keyId
        ? "signature does not match the receipt's contents"
        : `signed by key ${receipt.keyId}, not by this key (${keyId}), or altered`;
    return { ok: false, reason: "bad-signature", detail };
  }
  if (receipt.keyId !== keyId) {
    return { ok: false, reason: "key-id-mismatch", detail: `receipt names key ${receipt.keyId}, signed by ${keyId}` };
  }
  const arithmetic = receiptArithmeticProblem(receipt);
  if (arithmetic) return { ok: false, reason: "inconsistent-amounts", detail: arithmetic };
  return { ok: true, keyId };
}

function receiptShapeProblem(r: SignedReceipt): string | undefined {
  if (typeof r !== "object" || r === null) return "not an object";
  for (const field of RECEIPT_BODY_FIELDS) {
    const value = (r as unknown as Record<string, unknown>)[field];
    if (field === "gpuIndices") {
      if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v) && v >= 0)) return `bad ${field}`;
    } else if (["receiptId", "jobId", "taskId", "tenant", "agentId", "gpuModel"].includes(field)) {
      if (typeof value !== "string") return `bad ${field}`;
    } else if (!Number.isSafeInteger(value)) return `bad ${field}`;
  }
  if (typeof r.signature !== "string" || typeof r.keyId !== "string") return "missing signature or keyId";
  return undefined;
}

/** A receipt as a JSON file (what `capa receipt get -o FILE` writes and `capa receipt verify FILE` reads). */
export function receiptToJson(receipt: SignedReceipt): string {
  return `${JSON.stringify(receipt, null, 2)}\n`;
}

export class ReceiptFormatError extends Error {
  override name = "ReceiptFormatError";
}

export function parseReceiptJson(text: string): SignedReceipt {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ReceiptFormatError(`receipt is not JSON: ${(cause as Error).message}`, { cause });
  }
  const problem = receiptShapeProblem(value as SignedReceipt);
  if (problem) throw new ReceiptFormatError(`not a capa receipt: ${problem}`);
  return value as SignedReceipt;
}
