import { describe, expect, it } from "vitest";
import { InvalidPriceSpecError } from "./errors.js";
import { formatPriceList, parsePriceList, pricesDiffer, removePrice, setPrice } from "./prices.js";
import { price } from "./testing/fixtures.js";

describe("provider price lists", () => {
  it("parses MODEL=ON_DEMAND[/INTERRUPTIBLE] in dollars into micros", () => {
    expect(parsePriceList("H100-80GB=2.49/1.20, A100-40GB=$1.10")).toEqual([
      { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 },
      { gpuModel: "A100-40GB", onDemandPerHour: 1_100_000, interruptiblePerHour: 0 },
    ]);
  });

  it.each([
    ["H100-80GB", /expected MODEL=ON_DEMAND/],
    ["H100-80GB=abc", /prices.H100-80GB.on_demand/],
    ["H100-80GB=1.0000001", /at most 6 decimals/],
    ["H100-80GB=-1", /negative/],
    ["H100-80GB=1,H100-80GB=2", /priced twice/],
  ])("rejects %s", (text, message) => {
    expect(() => parsePriceList(text)).toThrow(InvalidPriceSpecError);
    expect(() => parsePriceList(text)).toThrow(message);
  });

  it("formats back to the same list", () => {
    const text = "A100-40GB=1.10,H100-80GB=2.49/1.20";
    expect(formatPriceList(parsePriceList(text))).toBe(text);
  });

  it("sets, replaces and removes one model's price, and says when the advert must change", () => {
    const before = [price("H100-80GB", "2.49")];
    const raised = setPrice(before, price("H100-80GB", "2.79", "1.30"));
    expect(raised).toEqual([price("H100-80GB", "2.79", "1.30")]);
    expect(before).toEqual([price("H100-80GB", "2.49")]);
    expect(pricesDiffer(before, raised)).toBe(true);
    expect(pricesDiffer(raised, [...raised].reverse())).toBe(false);
    expect(removePrice(raised, "H100-80GB")).toEqual([]);
  });
});
