import { describe, expect, it } from "vitest";
import { AgentConfigError } from "./errors.js";
import { applyPriceChange, parsePriceChangeList } from "./price-control.js";

const H100 = { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 };
const A100 = { gpuModel: "A100-40GB", onDemandPerHour: 1_100_000, interruptiblePerHour: 0 };

describe("runtime price changes", () => {
  it("sets listed models, keeps the others, canonicalises names", () => {
    expect(applyPriceChange([H100, A100], { prices: "h100=2.10/1.00" })).toEqual([
      A100,
      { gpuModel: "H100-80GB", onDemandPerHour: 2_100_000, interruptiblePerHour: 1_000_000 },
    ]);
  });

  it("withdraws interruptible capacity when the new price has none", () => {
    expect(applyPriceChange([H100], { prices: "H100-80GB=2.49" })).toEqual([{ ...H100, interruptiblePerHour: 0 }]);
  });

  it("replaces the whole list with replace (an empty list withdraws every price)", () => {
    expect(applyPriceChange([H100, A100], { prices: "A100-40GB=0.99", replace: true })).toEqual([
      { ...A100, onDemandPerHour: 990_000 },
    ]);
    expect(applyPriceChange([H100], { prices: "", replace: true })).toEqual([]);
  });

  it("refuses malformed requests and lists, naming the problem", () => {
    expect(() => applyPriceChange([H100], { prices: "" })).toThrow(/no price given/);
    expect(() => applyPriceChange([H100], { prices: 3 })).toThrow(AgentConfigError);
    expect(() => applyPriceChange([H100], null)).toThrow(AgentConfigError);
    expect(() => applyPriceChange([H100], { prices: "H100=1", replace: "yes" })).toThrow(/replace/);
    expect(() => applyPriceChange([H100], { prices: "H100=1.0000001" })).toThrow(/on-demand/);
    expect(() => parsePriceChangeList("H100=1,H100-80GB=2")).toThrow(/priced twice/);
  });
});
