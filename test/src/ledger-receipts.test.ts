import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus } from "@capa/bus";
import { parseUsd } from "@capa/domain";
import {
  generateSigningKey,
  type Ledger,
  loadOrCreateSigningKey,
  openLedger,
  parseReceiptJson,
  ReceiptFormatError,
  receiptToJson,
  type SigningKey,
  SigningKeyError,
  verifyReceipt,
} from "@capa/ledger";
import { RECEIPT_BODY_FIELDS, type SignedReceipt } from "@capa/market";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const T0 = Date.UTC(2025, 6, 1);

/** Changes one field of a receipt to a different value of the same type. */
function tamper(receipt: SignedReceipt, field: (typeof RECEIPT_BODY_FIELDS)[number]): SignedReceipt {
  const value = receipt[field];
  const changed = Array.isArray(value) ? [...value, 7] : typeof value === "number" ? value + 1 : `${value}x`;
  return { ...receipt, [field]: changed };
}

describe("receipts on a real nats-server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ledger: Ledger;
  let key: SigningKey;
  let dir: string;
  let receipt: SignedReceipt;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "capa-keys-"));
    key = loadOrCreateSigningKey(join(dir, "scheduler", "receipt-key.pem"));
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "receipts-test" });
    ledger = await openLedger(nc, { feeBasisPoints: 750, signingKey: key, now: () => T0 + 60_000 });
    for (const [taskId, agentId, tenant] of [
      ["j1-0", "agent-a", "acme"],
      ["j1-1", "agent-b", "acme"],
      ["j2-0", "agent-a", "globex"],
    ] as const) {
      await ledger.recordSettlement({
        tenant,
        jobId: taskId.split("-")[0]!,
        taskId,
        epoch: 2,
        agentId,
        provider: "gpu-co",
        region: "eu-west",
        gpuModel: "H100-80GB",
        gpuIndices: [0, 1],
        pricePerGpuHour: parseUsd("2.49"),
        startMs: T0,
        endMs: T0 + 45_000,
        gpuMilliseconds: 90_000,
        interruptible: false,
        endReason: "succeeded",
      });
    }
    receipt = (await ledger.getReceipt("rcpt:j1-0:2"))!;
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fetches a stored receipt that verifies offline with the published key", () => {
    expect(receipt).toMatchObject({
      receiptId: "rcpt:j1-0:2",
      tenant: "acme",
      agentId: "agent-a",
      gpuIndices: [0, 1],
      gpuMilliseconds: 90_000,
      amount: 62_250,
      fee: 4_668,
      payout: 57_582,
      issuedAtMs: T0 + 60_000,
      keyId: key.keyId,
    });
    expect(verifyReceipt(receipt, ledger.signingKeyInfo().publicKeyPem)).toEqual({ ok: true, keyId: key.keyId });
  });

  it("verifies after a round trip through a JSON file, as `capa receipt verify FILE` does", () => {
    const parsed = parseReceiptJson(receiptToJson(receipt));
    expect(verifyReceipt(parsed, key.publicKeyPem).ok).toBe(true);
    expect(() => parseReceiptJson('{"receiptId": 1}')).toThrow(ReceiptFormatError);
  });

  it.each(RECEIPT_BODY_FIELDS)("fails verification when %s is tampered with", (field) => {
    const result = verifyReceipt(tamper(receipt, field), key.publicKeyPem);
    expect(result).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("fails verification when the signature or the key id is altered", () => {
    const sig = Buffer.from(receipt.signature, "base64");
    sig[0] = (sig[0]! + 1) % 256;
    expect(verifyReceipt({ ...receipt, signature: sig.toString("base64") }, key.publicKeyPem)).toMatchObject({
      ok: false,
      reason: "bad-signature",
    });
    expect(verifyReceipt({ ...receipt, keyId: "0000000000000000" }, key.publicKeyPem)).toMatchObject({
      ok: false,
      reason: "key-id-mismatch",
    });
  });

  it("fails verification with another key, and says so", () => {
    const other = generateSigningKey();
    const result = verifyReceipt(receipt, other.publicKeyPem);
    expect(result).toMatchObject({ ok: false, reason: "bad-signature" });
    expect(result.ok ? "" : result.detail).toMatch(/not by this key/);
    expect(verifyReceipt(receipt, "not a key")).toMatchObject({ ok: false, reason: "malformed-key" });
  });

  it("lists receipts by tenant, by agent and by job", async () => {
    const ids = (rs: SignedReceipt[]) => rs.map((r) => r.receiptId).sort();
    expect(ids(await ledger.listReceipts({ tenant: "acme" }))).toEqual(["rcpt:j1-0:2", "rcpt:j1-1:2"]);
    expect(ids(await ledger.listReceipts({ agentId: "agent-a" }))).toEqual(["rcpt:j1-0:2", "rcpt:j2-0:2"]);
    expect(ids(await ledger.listReceipts({ tenant: "acme", jobId: "j1", agentId: "agent-b" }))).toEqual([
      "rcpt:j1-1:2",
    ]);
    expect(await ledger.listReceipts({ tenant: "acme", toMs: T0 + 45_000 })).toEqual([]);
    expect(await ledger.getReceipt("rcpt:j1-0:3")).toBeUndefined();
  });

  it("keeps the first receipt when a settlement is replayed later", async () => {
    const replay = await openLedger(nc, { feeBasisPoints: 750, signingKey: key, now: () => T0 + 999_999 });
    const again = await replay.recordSettlement({
      tenant: "acme",
      jobId: "j1",
      taskId: "j1-0",
      epoch: 2,
      agentId: "agent-a",
      provider: "gpu-co",
      region: "eu-west",
      gpuModel: "H100-80GB",
      gpuIndices: [0, 1],
      pricePerGpuHour: parseUsd("2.49"),
      startMs: T0,
      endMs: T0 + 45_000,
      gpuMilliseconds: 90_000,
      interruptible: false,
      endReason: "succeeded",
    });
    expect(again.alreadySettled).toBe(true);
    expect(again.receipt).toEqual(receipt);
    expect(await ledger.listReceipts({ tenant: "acme" })).toHaveLength(2);
  });

  it("persists the signing key and loads the same one next time", () => {
    const path = join(dir, "scheduler", "receipt-key.pem");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${path}.pub`, "utf8")).toBe(key.publicKeyPem);
    expect(loadOrCreateSigningKey(path).keyId).toBe(key.keyId);
    expect(() => loadOrCreateSigningKey(`${path}.pub`)).toThrow(SigningKeyError);
  });
});
