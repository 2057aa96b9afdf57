/**
 * Recurring and triggered runs (`kind: Schedule`): a cron expression, a job template and what to do when a run
 * is due while the previous one is still active. The cron grammar is croner's (5 fields, or 6 with seconds
 * first; `@daily` and friends; day-of-month and day-of-week OR-ed as in Vixie cron), evaluated in an IANA time
 * zone. Everything here is pure: the clock is a parameter, so next-fire logic is tested with a fake clock.
 */
import { Cron } from "croner";
import type { FieldViolation } from "./errors.js";
import type { JobSpec } from "./job.js";
import { jobSpecViolations } from "./validation.js";

/** forbid: skip a due run while one is active; replace: cancel the active one and start; allow: run side by side. */
export const CONCURRENCY_POLICIES = ["forbid", "replace", "allow"] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

export interface ScheduleSpec {
  name: string;
  /** Cron expression; "" = trigger only. */
  cron: string;
  /** IANA zone the expression is read in; "" = UTC. */
  timezone: string;
  concurrency: ConcurrencyPolicy;
  /** Runs kept in the history (oldest dropped first). */
  historyLimit: number;
  /** No cron fires while suspended (triggers still queue and start). */
  suspend: boolean;
  /** The job each run submits. */
  job: JobSpec;
}

export const SCHEDULE_LIMITS = { maxHistory: 100, defaultHistory: 20, maxCronLength: 256 } as const;
const SCHEDULE_NAME = /^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$/;

/** A croner instance that never runs anything (it only computes dates). */
function cronOf(cron: string, timezone: string): Cron {
  return new Cron(cron, { paused: true, timezone: timezone || "UTC", legacyMode: true });
}

/** Why the expression (in that zone) cannot be used; undefined when it can. */
export function cronProblem(cron: string, timezone: string): string | undefined {
  if (cron.length > SCHEDULE_LIMITS.maxCronLength) return `must be at most ${SCHEDULE_LIMITS.maxCronLength} characters`;
  try {
    cronOf(cron, timezone).nextRun(new Date(0));
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^CronPattern: /, "");
  }
}

export function timezoneProblem(timezone: string): string | undefined {
  if (timezone === "") return undefined;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return undefined;
  } catch {
    return `unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as Europe/Berlin)`;
  }
}

/** The first fire time strictly after `afterMs`, or undefined when the expression never fires again. */
export function nextFireAfter(cron: string, timezone: string, afterMs: number): number | undefined {
  if (cron === "") return undefined;
  return cronOf(cron, timezone).nextRun(new Date(afterMs))?.getTime();
}

/** Field paths as on the wire (`spec.cron`, `spec.job.replicas`), like jobSpecViolations. */
export function scheduleSpecViolations(s: ScheduleSpec, prefix = "spec"): FieldViolation[] {
  const v: FieldViolation[] = [];
  const f = (name: string) => `${prefix}.${name}`;
  if (!SCHEDULE_NAME.test(s.name))
    v.push({ field: f("name"), message: "must be 1-48 lower-case letters, digits or '-', not at either end" });
  const tz = timezoneProblem(s.timezone);
  if (tz) v.push({ field: f("timezone"), message: tz });
  if (s.cron !== "" && !tz) {
    const problem = cronProblem(s.cron, s.timezone);
    if (problem) v.push({ field: f("cron"), message: problem });
  }
  if (!CONCURRENCY_POLICIES.includes(s.concurrency))
    v.push({ field: f("concurrency_policy"), message: `must be one of ${CONCURRENCY_POLICIES.join(", ")}` });
  if (!Number.isInteger(s.historyLimit) || s.historyLimit < 1 || s.historyLimit > SCHEDULE_LIMITS.maxHistory)
    v.push({ field: f("history_limit"), message: `must be in 1..${SCHEDULE_LIMITS.maxHistory}` });
  v.push(...jobSpecViolations(s.job, f("job")));
  return v;
}
