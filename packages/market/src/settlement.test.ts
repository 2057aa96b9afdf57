/**
 * The money rules, written down as cases (micro-dollars throughout):
 * - charge = price × GPU-ms / 3_600_000, rounded half-up to the micro (domain costForGpuMillis);
 * - fee = charge × bps / 10_000, rounded DOWN; payout = charge − fee; so charge = fee + payout exactly.
 */
import { describe, expect, it } from "vitest";
import { canonicalJson, receiptArithmeticProblem, receiptBody, receiptSigningPayload } from "./receipt.js";
import {
  dedupeEntries,
  earningsFrom,
  invoiceFrom,
  type LedgerEntry,
  type Settlement,
  settlementEntries,
} from "./settlement.js";
import { usd } from "./testing/fixtures.js";

function settlement(overrides: Partial<Settlement> = {}): Settlement {
  return {
    tenant: "acme",
    jobId: "j1",
    taskId: "j1-0",
    epoch: 1,
    agentId: "a1",
    provider: "prov",
    region: "eu-west",
    gpuModel: "H100-80GB",
    gpuIndices: [0],
    pricePerGpuHour: usd("2.49"),
    startMs: 1_000,
    endMs: 4_000,
    gpuMilliseconds: 3_000,
    interruptible: false,
    endReason: "succeeded",
    ...overrides,
  };
}

describe("settlement rounding, case by case", () => {
  it.each([
    // [why, price µ$/GPU-h, GPU-ms, fee bps, charge, fee, payout]
    ["$2.49/h for 3 s: exact", 2_490_000, 3_000, 1_000, 2_075, 207, 1_868],
    ["1 µ$/h for 0.5 h: exactly half rounds up", 1, 1_800_000, 0, 1, 0, 1],
    ["1 µ$/h for just under half rounds down", 1, 1_799_999, 0, 0, 0, 0],
    ["$1/h for 1 ms: 0.2777… rounds down", 1_000_000, 1, 1_000, 0, 0, 0],
    ["$1/h for 2 ms: 0.555… rounds up", 1_000_000, 2, 1_000, 1, 0, 1],
    ["fee rounds down: 10 % of 9 µ$ is 0", 3_000, 10_800, 1_000, 9, 0, 9],
    ["fee rounds down: 15 % of 1_000_003 µ$", 1_000_003, 3_600_000, 1_500, 1_000_003, 150_000, 850_003],
    ["no fee: the provider gets everything", 2_490_000, 3_600_000, 0, 2_490_000, 0, 2_490_000],
    ["all fee", 2_490_000, 3_600_000, 10_000, 2_490_000, 2_490_000, 0],
    ["zero time costs nothing", 2_490_000, 0, 1_000, 0, 0, 0],
  ])("%s", (_why, price, gpuMs, bps, charge, fee, payout) => {
    const e = settlementEntries(settlement({ pricePerGpuHour: price, gpuMilliseconds: gpuMs }), bps);
    expect([e.charge.amount, e.fee.amount, e.payout.amount]).toEqual([charge, fee, payout]);
    expect(e.fee.amount + e.payout.amount).toBe(e.charge.amount);
  });

  it("gives each entry a deterministic id and the allocation's end as its period", () => {
    const e = settlementEntries(settlement({ taskId: "j9-2", epoch: 7, endMs: 5_555 }), 500);
    expect([e.charge.id, e.fee.id, e.payout.id]).toEqual(["charge:j9-2:7", "fee:j9-2:7", "payout:j9-2:7"]);
    expect(e.charge.atMs).toBe(5_555);
    expect(e.charge.receiptId).toBe("rcpt:j9-2:7");
    expect(settlementEntries(settlement({ taskId: "j9-2", epoch: 7, endMs: 5_555 }), 500)).toEqual(e);
  });
});

describe("invoices and statements", () => {
  const a = settlementEntries(
    settlement({ jobId: "j1", taskId: "j1-0", gpuMilliseconds: 3_600_000, endMs: 10 }),
    1_000,
  );
  const b = settlementEntries(
    settlement({ jobId: "j1", taskId: "j1-1", agentId: "a2", gpuMilliseconds: 1_800_000, endMs: 20 }),
    1_000,
  );
  const c = settlementEntries(
    settlement({ jobId: "j2", taskId: "j2-0", gpuMilliseconds: 360_000, endMs: 30, startMs: 0 }),
    1_000,
  );
  const d = settlementEntries(
    settlement({ tenant: "other", jobId: "j3", taskId: "j3-0", provider: "p2", agentId: "a3", endMs: 15 }),
    1_000,
  );
  const all: LedgerEntry[] = [a, b, c, d].flatMap((e) => [e.charge, e.fee, e.payout]);

  it("groups a tenant's charges in the period by job", () => {
    const invoice = invoiceFrom(all, "acme", 0, 100);
    expect(invoice.lines.map((l) => [l.jobId, l.allocations, l.amount])).toEqual([
      ["j2", 1, usd("0.249")],
      ["j1", 2, usd("2.49") + usd("1.245")],
    ]);
    expect(invoice.total).toBe(usd("2.49") + usd("1.245") + usd("0.249"));
  });

  it("takes entries in [from, to) by the allocation's end and can select one job", () => {
    expect(invoiceFrom(all, "acme", 10, 20).lines.map((l) => l.jobId)).toEqual(["j1"]);
    expect(invoiceFrom(all, "acme", 10, 20).total).toBe(usd("2.49"));
    expect(invoiceFrom(all, "acme", 0, 100, "j2").total).toBe(usd("0.249"));
  });

  it("counts a duplicated entry once", () => {
    expect(invoiceFrom([...all, a.charge, a.charge], "acme", 0, 100).total).toBe(
      invoiceFrom(all, "acme", 0, 100).total,
    );
    expect(dedupeEntries([a.charge, a.charge, b.charge]).length).toBe(2);
  });

  it("states an agent's or provider's earnings with gross = fee + payout", () => {
    const agent = earningsFrom(all, { agentId: "a1" }, 0, 100);
    expect(agent.lines.map((l) => l.taskId)).toEqual(["j1-0", "j2-0"]);
    expect(agent.gross).toBe(usd("2.49") + usd("0.249"));
    expect(agent.fee + agent.payout).toBe(agent.gross);
    const provider = earningsFrom(all, { provider: "prov" }, 0, 100);
    expect(provider.lines.length).toBe(3);
    expect(provider.gross).toBe(invoiceFrom(all, "acme", 0, 100).total);
  });
});

describe("receipt canonical form", () => {
  it("sorts keys recursively and writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: [3, { d: "x", c: true }], e: null })).toBe(
      '{"a":[3,{"c":true,"d":"x"}],"b":1,"e":null}',
    );
  });

  it("refuses floats, which have no single canonical spelling here", () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(/safe integers/);
  });

  it("signs exactly the body fields, so adding a signature does not change the payload", () => {
    const body = receiptBody(settlementEntries(settlement(), 1_000), 99);
    const withExtras = { ...body, signature: "x", keyId: "y" };
    expect(receiptSigningPayload(withExtras)).toEqual(receiptSigningPayload(body));
    expect(new TextDecoder().decode(receiptSigningPayload(body))).toMatch(
      /^\{"agentId":"a1","amount":2075,"endMs":4000,/,
    );
  });

  it("checks a receipt's arithmetic independently of its signature", () => {
    const body = receiptBody(settlementEntries(settlement(), 1_000), 99);
    expect(receiptArithmeticProblem(body)).toBeUndefined();
    expect(receiptArithmeticProblem({ ...body, amount: body.amount + 1 })).toMatch(/price × GPU time/);
    expect(receiptArithmeticProblem({ ...body, fee: body.fee + 1 })).toMatch(/fee .* \+ payout/);
    expect(
      receiptArithmeticProblem({ ...body, gpuMilliseconds: 4_000, amount: 2_767, fee: 276, payout: 2_491 }),
    ).toMatch(/do not fit/);
  });
});
