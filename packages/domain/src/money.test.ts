import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { costForDuration, costForGpuMillis, formatUsd, MoneyError, parseUsd, splitFee } from "./money.js";

describe("parseUsd", () => {
  it.each([
    ["1.89", 1_890_000],
    ["$1.89", 1_890_000],
    ["0.000001", 1],
    ["12", 12_000_000],
    ["-0.5", -500_000],
    [2.49, 2_490_000],
  ])("%j → %d micros", (input, micros) => {
    expect(parseUsd(input)).toBe(micros);
  });

  it.each(["1.0000001", "abc", "", "1,5", "1e3"])("rejects %j instead of rounding it", (input) => {
    expect(() => parseUsd(input)).toThrow(MoneyError);
  });
});

describe("formatUsd", () => {
  it.each([
    [1_890_000, "$1.89"],
    [1, "$0.000001"],
    [0, "$0.00"],
    [-2_500_000, "-$2.50"],
    [123_456_789, "$123.456789"],
  ])("%d → %s", (micros, text) => {
    expect(formatUsd(micros)).toBe(text);
  });

  it("round-trips with parseUsd", () => {
    fc.assert(fc.property(fc.integer({ min: -1e12, max: 1e12 }), (m) => parseUsd(formatUsd(m)) === m));
  });
});

describe("costForGpuMillis (half-up to the micro)", () => {
  it.each([
    // $3.60/GPU-h for 1 s = $0.001 exactly
    [3_600_000, 1_000, 1_000],
    // $1/GPU-h for 1 ms = 0.2777… micros → 0
    [1_000_000, 1, 0],
    // $1/GPU-h for 2 ms = 0.555… micros → 1 (half-up)
    [1_000_000, 2, 1],
    // exactly half: 1.8 µ$/h... price 1_800_000 micros/h × 1 ms = 0.5 micros → 1
    [1_800_000, 1, 1],
    // 8 H100s at $2.49 for 30 days does not overflow
    [2_490_000, 8 * 30 * 24 * 3_600_000, 14_342_400_000],
  ])("price %d × %d gpu-ms = %d", (price, gpuMs, cost) => {
    expect(costForGpuMillis(price, gpuMs)).toBe(cost);
  });

  it("is exact where a float product would drift", () => {
    expect(costForDuration(2_490_000, 2, 3)).toBe(4_150);
  });
});

describe("splitFee", () => {
  it("rounds the fee down and gives the remainder to the payee, so the parts always add up", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e13 }), fc.integer({ min: 0, max: 10_000 }), (amount, bps) => {
        const { fee, payout } = splitFee(amount, bps);
        return fee + payout === amount && fee >= 0 && payout >= 0 && fee <= (amount * bps) / 10_000;
      }),
    );
  });

  it.each([-1, 10_001, 1.5])("rejects %d basis points", (bps) => {
    expect(() => splitFee(100, bps)).toThrow(MoneyError);
  });
});
