import { describe, expect, it } from "vitest";
import { defaultJobSpec } from "./job.js";
import { cronProblem, nextFireAfter, type ScheduleSpec, scheduleSpecViolations } from "./schedule.js";

const at = (iso: string) => Date.parse(iso);
const spec = (over: Partial<ScheduleSpec> = {}): ScheduleSpec => ({
  name: "nightly",
  cron: "0 3 * * *",
  timezone: "",
  concurrency: "forbid",
  historyLimit: 20,
  suspend: false,
  job: defaultJobSpec({ template: { command: ["train"], env: {}, workingDir: "", killGraceSeconds: 10 } }),
  ...over,
});

describe("next fire time (pure, fake clock)", () => {
  it("is strictly after the given instant, in UTC by default", () => {
    expect(nextFireAfter("0 3 * * *", "", at("2026-12-02T02:59:59Z"))).toBe(at("2026-12-02T03:00:00Z"));
    expect(nextFireAfter("0 3 * * *", "", at("2026-12-02T03:00:00Z"))).toBe(at("2026-12-03T03:00:00Z"));
    expect(nextFireAfter("*/15 * * * *", "", at("2026-12-02T10:07:00Z"))).toBe(at("2026-12-02T10:15:00Z"));
  });
  it("takes seconds as a sixth leading field and the @ shorthands", () => {
    expect(nextFireAfter("*/2 * * * * *", "", at("2026-12-02T10:00:01Z"))).toBe(at("2026-12-02T10:00:02Z"));
    expect(nextFireAfter("@daily", "", at("2026-12-02T10:00:00Z"))).toBe(at("2026-12-03T00:00:00Z"));
  });
  it("reads the expression in the schedule's time zone, across a DST change", () => {
    // 03:00 in Berlin is 02:00Z in winter and 01:00Z from 29 March 2026 (CEST).
    expect(nextFireAfter("0 3 * * *", "Europe/Berlin", at("2026-03-28T12:00:00Z"))).toBe(at("2026-03-29T01:00:00Z"));
    expect(nextFireAfter("0 3 * * *", "Europe/Berlin", at("2026-03-27T12:00:00Z"))).toBe(at("2026-03-28T02:00:00Z"));
  });
  it("has none for an expression that never fires, or for trigger-only schedules", () => {
    expect(nextFireAfter("0 0 30 2 *", "", 0)).toBeUndefined();
    expect(nextFireAfter("", "", 0)).toBeUndefined();
  });
});

describe("schedule validation names each field", () => {
  it.each([
    [{ cron: "61 * * * *" }, "spec.cron: Invalid value for minute: 61"],
    [{ cron: "* * *" }, "spec.cron: invalid configuration format"],
    [{ timezone: "Mars/Base" }, 'spec.timezone: unknown time zone "Mars/Base"'],
    [{ name: "Nightly" }, "spec.name: must be 1-48 lower-case"],
    [{ concurrency: "queue" as never }, "spec.concurrency_policy: must be one of forbid, replace, allow"],
    [{ historyLimit: 0 }, "spec.history_limit: must be in 1..100"],
    [{ historyLimit: 101 }, "spec.history_limit: must be in 1..100"],
    [{ job: defaultJobSpec({ replicas: 0 }) }, "spec.job.replicas"],
  ])("%j → %s", (over, expected) => {
    const v = scheduleSpecViolations(spec(over));
    expect(v.map((x) => `${x.field}: ${x.message}`).join("\n")).toContain(expected);
  });
  it("a valid schedule and a trigger-only one have no violations", () => {
    expect(scheduleSpecViolations(spec())).toEqual([]);
    expect(scheduleSpecViolations(spec({ cron: "" }))).toEqual([]);
    expect(cronProblem("@hourly", "")).toBeUndefined();
  });
});
