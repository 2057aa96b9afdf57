import { describe, expect, it } from "vitest";
import { DurationError, formatDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["90m", 5400],
    ["2h", 7200],
    ["1h30m", 5400],
    ["45s", 45],
    ["1h30m15s", 5415],
    ["0s", 0],
    [" 2h ", 7200],
    ["1h0m1s", 3601],
  ])("%j → %d seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each([
    ["2", '"2" has no unit: write 2h, 2m or 2s'],
    ["2 hours", 'not a duration: "2 hours" (use e.g. 90m, 2h, 1h30m, 45s)'],
    ["hours", "not a duration"],
    ["", "not a duration"],
    ["1.5h", "not a duration"],
    ["30m1h", "not a duration"],
    ["1d", "not a duration"],
    ["2H", "not a duration"],
    ["-5m", "not a duration"],
    ["1h 30m", "not a duration"],
    ["h", "not a duration"],
    ["1h1h", "not a duration"],
    ["9000h", "longer than a year"],
  ])("%j is refused", (text, message) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
    expect(() => parseDuration(text)).toThrow(message);
  });

  it("formatDuration is read back by parseDuration", () => {
    for (const s of [0, 1, 59, 60, 61, 3599, 3600, 3601, 5400, 86_400, 90_061]) {
      expect(parseDuration(formatDuration(s))).toBe(s);
    }
    expect(formatDuration(5400)).toBe("1h30m");
    expect(formatDuration(45)).toBe("45s");
  });
});
