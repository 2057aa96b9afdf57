import { costForGpuMillis, splitFee } from "@capa/domain";
import { generateSigningKey, receiptToJson, signReceipt } from "@capa/ledger";
import type { ReceiptBody } from "@capa/market";
import { describe, expect, it } from "vitest";
import { checkReceipt, RECEIPT_INVALID, RECEIPT_UNCHECKED, RECEIPT_VALID } from "./receipt-check.js";

const key = generateSigningKey();
const otherKey = generateSigningKey();

function body(): ReceiptBody {
  const gpuMilliseconds = 2 * 90_000;
  const amount = costForGpuMillis(2_390_000, gpuMilliseconds);
  const { fee, payout } = splitFee(amount, 1_000);
  return {
    receiptId: "rcpt:j-one-0:1",
    jobId: "j-one",
    taskId: "j-one-0",
    tenant: "acme",
    agentId: "sim-eu-west-1",
    gpuIndices: [0, 1],
    gpuModel: "H100-80GB",
    startMs: 1_700_000_000_000,
    endMs: 1_700_000_090_000,
    gpuMilliseconds,
    pricePerGpuHour: 2_390_000,
    amount,
    fee,
    payout,
    epoch: 1,
    issuedAtMs: 1_700_000_091_000,
  };
}

const signed = () => receiptToJson(signReceipt(body(), key));

/** The signed file with one field changed, the way someone editing it by hand would. */
function tampered(field: string, value: unknown): string {
  const doc = JSON.parse(signed()) as Record<string, unknown>;
  doc[field] = value;
  return JSON.stringify(doc, null, 2);
}

describe("checkReceipt", () => {
  it("accepts an untouched receipt with the signing key: exit 0 and a line starting 'valid'", () => {
    const check = checkReceipt(signed(), key.publicKeyPem);
    expect(check).toMatchObject({
      valid: true,
      exitCode: RECEIPT_VALID,
      receiptId: "rcpt:j-one-0:1",
      keyId: key.keyId,
    });
    expect(check.message).toBe(
      `valid: receipt rcpt:j-one-0:1 signed by key ${key.keyId}: $0.1195 for 0.05 GPU-h of 2xH100-80GB on ` +
        "sim-eu-west-1, job j-one, tenant acme (fee $0.01195, payout $0.10755)",
    );
  });

  it("rejects a changed amount, GPU time or tenant as a bad signature: exit 1", () => {
    for (const [field, value] of [
      ["amount", 1],
      ["gpuMilliseconds", 1],
      ["tenant", "someone-else"],
      ["gpuIndices", [0]],
    ] as const) {
      const check = checkReceipt(tampered(field, value), key.publicKeyPem);
      expect(check, field).toMatchObject({ valid: false, exitCode: RECEIPT_INVALID, reason: "bad-signature" });
      expect(check.message).toMatch(/^receipt rcpt:j-one-0:1 is NOT valid: bad-signature: /);
    }
  });

  it("rejects a receipt checked against another key, naming both keys", () => {
    const check = checkReceipt(signed(), otherKey.publicKeyPem);
    expect(check).toMatchObject({ valid: false, exitCode: RECEIPT_INVALID, reason: "bad-signature" });
    expect(check.message).toContain(key.keyId);
    expect(check.message).toContain(otherKey.keyId);
  });

  it("rejects a correctly signed receipt whose amounts do not add up", () => {
    const wrong = { ...body(), amount: body().amount + 1, payout: body().payout + 1 };
    const check = checkReceipt(receiptToJson(signReceipt(wrong, key)), key.publicKeyPem);
    expect(check).toMatchObject({ valid: false, exitCode: RECEIPT_INVALID, reason: "inconsistent-amounts" });
  });

  it("rejects text that is not a receipt: exit 1", () => {
    expect(checkReceipt("not json", key.publicKeyPem)).toMatchObject({
      exitCode: RECEIPT_INVALID,
      reason: "malformed-receipt",
    });
    expect(checkReceipt(tampered("signature", undefined), key.publicKeyPem)).toMatchObject({
      exitCode: RECEIPT_INVALID,
      reason: "malformed-receipt",
    });
    expect(checkReceipt('{"receiptId": "x"}', key.publicKeyPem).message).toMatch(/^not valid: malformed-receipt: /);
  });

  it("cannot check without a usable key: a runtime failure (exit 1, never the usage status 2), not a verdict", () => {
    const check = checkReceipt(signed(), "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n");
    expect(check).toMatchObject({ valid: false, checked: false, exitCode: 1, reason: "malformed-key" });
    expect(RECEIPT_UNCHECKED).toBe(1);
    expect(check.message).toMatch(/^cannot check receipt rcpt:j-one-0:1: /);
  });
});
