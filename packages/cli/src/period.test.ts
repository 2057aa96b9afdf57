import { describe, expect, it } from "vitest";
import { describePeriod, formatInstant, PeriodError, parseInstant, resolvePeriod } from "./period.js";

// 2026-11-29T15:25:22.500Z
const NOW = Date.UTC(2026, 10, 29, 15, 25, 22, 500);
const utc = (text: string) => Date.parse(text);

describe("parseInstant", () => {
  it("reads days and months as UTC midnights; as an end they include the whole day or month", () => {
    expect(parseInstant("2026-11-01", NOW)).toBe(utc("2026-11-01T00:00:00Z"));
    expect(parseInstant("2026-11-01", NOW, true)).toBe(utc("2026-11-02T00:00:00Z"));
    expect(parseInstant("2026-11", NOW)).toBe(utc("2026-11-01T00:00:00Z"));
    expect(parseInstant("2026-11", NOW, true)).toBe(utc("2026-12-01T00:00:00Z"));
    expect(parseInstant("2026-12", NOW, true)).toBe(utc("2027-01-01T00:00:00Z"));
    expect(parseInstant("2028-02-29", NOW, true)).toBe(utc("2028-03-01T00:00:00Z"));
  });

  it("reads today, yesterday and now against the given clock", () => {
    expect(parseInstant("now", NOW)).toBe(NOW);
    expect(parseInstant("now", NOW, true)).toBe(NOW);
    expect(parseInstant("today", NOW)).toBe(utc("2026-11-29T00:00:00Z"));
    expect(parseInstant("today", NOW, true)).toBe(utc("2026-11-30T00:00:00Z"));
    expect(parseInstant(" Yesterday ", NOW)).toBe(utc("2026-11-28T00:00:00Z"));
    expect(parseInstant("yesterday", NOW, true)).toBe(utc("2026-11-29T00:00:00Z"));
  });

  it("reads instants as UTC unless they carry an offset, exact whether start or end", () => {
    expect(parseInstant("2026-11-01T12:30", NOW)).toBe(utc("2026-11-01T12:30:00Z"));
    expect(parseInstant("2026-11-01 12:30:15", NOW, true)).toBe(utc("2026-11-01T12:30:15Z"));
    expect(parseInstant("2026-11-01T12:30:00.250Z", NOW)).toBe(utc("2026-11-01T12:30:00.250Z"));
    expect(parseInstant("2026-11-01T12:30+01:00", NOW)).toBe(utc("2026-11-01T11:30:00Z"));
    expect(parseInstant("2026-11-01T12:30-0230", NOW)).toBe(utc("2026-11-01T15:00:00Z"));
  });

  it("reads ages as that long before now, with or without '-' or 'ago'", () => {
    for (const text of ["7d", "-7d", "7d ago", "168h"]) expect(parseInstant(text, NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseInstant("1h30m", NOW)).toBe(NOW - 5_400_000);
    expect(parseInstant("90s ago", NOW, true)).toBe(NOW - 90_000);
  });

  it.each([
    "",
    "7",
    "1700000000000",
    "2026-13",
    "2026-02-30",
    "2026-11-31",
    "2026-11-01T25:00",
    "2026-11-01T12:61",
    "next week",
    "7 days ago",
    "2026/11/01",
  ])("refuses %j with the accepted forms", (text) => {
    expect(() => parseInstant(text, NOW)).toThrow(PeriodError);
    expect(() => parseInstant(text, NOW)).toThrow(/use e\.g\. 2026-11-01/);
  });
});

describe("resolvePeriod", () => {
  it("defaults to everything up to now (0, 0 on the wire)", () => {
    expect(resolvePeriod({}, NOW)).toEqual({ fromMs: 0, toMs: 0 });
  });

  it("makes --from and --to a half-open window with a bare --to day included", () => {
    expect(resolvePeriod({ from: "2026-11-01", to: "2026-11-30" }, NOW)).toEqual({
      fromMs: utc("2026-11-01T00:00:00Z"),
      toMs: utc("2026-12-01T00:00:00Z"),
    });
    expect(resolvePeriod({ from: "7d" }, NOW)).toEqual({ fromMs: NOW - 7 * 86_400_000, toMs: 0 });
    expect(resolvePeriod({ to: "2026-11-01T00:00" }, NOW)).toEqual({ fromMs: 0, toMs: utc("2026-11-01T00:00:00Z") });
    // The same day as --from and --to is that one day.
    expect(resolvePeriod({ from: "today", to: "today" }, NOW)).toEqual({
      fromMs: utc("2026-11-29T00:00:00Z"),
      toMs: utc("2026-11-30T00:00:00Z"),
    });
  });

  it("reads --month as one calendar month, also this and last (across a year end)", () => {
    expect(resolvePeriod({ month: "2026-02" }, NOW)).toEqual({
      fromMs: utc("2026-02-01T00:00:00Z"),
      toMs: utc("2026-03-01T00:00:00Z"),
    });
    expect(resolvePeriod({ month: "this" }, NOW)).toEqual({
      fromMs: utc("2026-11-01T00:00:00Z"),
      toMs: utc("2026-12-01T00:00:00Z"),
    });
    const january = Date.UTC(2027, 0, 15);
    expect(resolvePeriod({ month: "last" }, january)).toEqual({
      fromMs: utc("2026-12-01T00:00:00Z"),
      toMs: utc("2027-01-01T00:00:00Z"),
    });
  });

  it("refuses backwards or empty windows, a future start, --month with --from/--to and bad months", () => {
    expect(() => resolvePeriod({ from: "2026-11-02", to: "2026-11-01T00:00" }, NOW)).toThrow(
      "--from (2026-11-02T00:00:00Z) must be before --to (2026-11-01T00:00:00Z)",
    );
    expect(() => resolvePeriod({ from: "2026-11-01T10:00", to: "2026-11-01T10:00" }, NOW)).toThrow(/must be before/);
    expect(() => resolvePeriod({ from: "2026-12-01" }, NOW)).toThrow("--from (2026-12-01T00:00:00Z) is in the future");
    expect(() => resolvePeriod({ month: "2026-11", from: "2026-11-01" }, NOW)).toThrow(/cannot be combined/);
    expect(() => resolvePeriod({ month: "2026-13" }, NOW)).toThrow(/--month takes YYYY-MM/);
    expect(() => resolvePeriod({ month: "november" }, NOW)).toThrow(PeriodError);
  });
});

describe("describePeriod", () => {
  it("names the window the way the header shows it", () => {
    const nov = utc("2026-11-01T00:00:00Z");
    const dec = utc("2026-12-01T00:00:00Z");
    expect(describePeriod({ fromMs: 0, toMs: 0 })).toBe("all time");
    expect(describePeriod({ fromMs: nov, toMs: 0 })).toBe("since 2026-11-01T00:00:00Z");
    expect(describePeriod({ fromMs: 0, toMs: dec })).toBe("until 2026-12-01T00:00:00Z");
    expect(describePeriod({ fromMs: nov, toMs: dec })).toBe("2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z");
    expect(formatInstant(NOW)).toBe("2026-11-29T15:25:22Z");
  });
});
