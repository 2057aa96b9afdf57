import { describe, expect, it } from "vitest";
import {
  formatAge,
  formatDuration,
  formatIndices,
  formatList,
  formatPrice,
  parseDuration,
  prefixLines,
  renderFields,
  renderTable,
} from "./format.js";

describe("renderTable", () => {
  it("pads every column to its widest cell and separates columns by two spaces", () => {
    const out = renderTable(
      ["ID", "STATE", "PRICE"],
      [
        ["j-1", "RUNNING", "$2.49"],
        ["job-long-id", "PENDING", "-"],
      ],
    );
    expect(out.split("\n")).toEqual([
      "ID           STATE    PRICE",
      "j-1          RUNNING  $2.49",
      "job-long-id  PENDING  -",
    ]);
  });

  it("right-aligns the requested columns and keeps one row per line", () => {
    const out = renderTable(
      ["MODEL", "FREE", "NOTE"],
      [
        ["H100-80GB", 3, "a\nb"],
        ["A100-40GB", 12, undefined],
      ],
      { rightAlign: [1] },
    );
    expect(out.split("\n")).toEqual(["MODEL      FREE  NOTE", "H100-80GB     3  a b", "A100-40GB    12"]);
  });
});

describe("money cells", () => {
  it("shows prices in dollars from integer micros and '-' for none", () => {
    expect(formatPrice(2_490_000)).toBe("$2.49");
    expect(formatPrice(1_942_500)).toBe("$1.9425");
    expect(formatPrice(0)).toBe("-");
    expect(formatPrice(undefined)).toBe("-");
  });
});

describe("parseDuration", () => {
  it.each([
    ["45", 45],
    ["45s", 45],
    ["90m", 5400],
    ["2h", 7200],
    ["1h30m", 5400],
    ["1.5h", 5400],
    ["1d", 86_400],
    ["0s", 0],
    [" 2H ", 7200],
  ])("%s → %i s", (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each(["", "h", "2x", "-5m", "1h 30m", "2h30", "abc"])("rejects %j", (input) => {
    expect(() => parseDuration(input)).toThrow(/not a duration/);
  });
});

describe("formatDuration and formatAge", () => {
  it("keeps the two largest units", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(59.6)).toBe("1m");
    expect(formatDuration(90)).toBe("1m30s");
    expect(formatDuration(7200)).toBe("2h");
    expect(formatDuration(7_500)).toBe("2h5m");
    expect(formatDuration(97_200)).toBe("1d3h");
  });

  it("measures ages against the given clock", () => {
    expect(formatAge(1_000, 13_000)).toBe("12s ago");
    expect(formatAge(0, 13_000)).toBe("-");
  });
});

describe("small cells", () => {
  it("formats lists, indices, fields and prefixed log lines", () => {
    expect(formatList([])).toBe("any");
    expect(formatList(["eu-west", "us-east"])).toBe("eu-west,us-east");
    expect(formatIndices([])).toBe("-");
    expect(formatIndices([0, 3])).toBe("0,3");
    expect(
      renderFields([
        ["job", "j-1"],
        ["state", "RUNNING"],
      ]),
    ).toBe("job:    j-1\nstate:  RUNNING");
    expect(prefixLines("a\nb\n", "[t-0] ")).toBe("[t-0] a\n[t-0] b\n");
    expect(prefixLines("partial", "[t-1] ")).toBe("[t-1] partial\n");
  });
});
