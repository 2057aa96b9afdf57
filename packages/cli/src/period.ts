/**
 * `--from`, `--to` and `--month` of the billing verbs → the half-open window [fromMs, toMs) the BillingService
 * takes. Pure: the clock is a parameter. Every calendar value is UTC, so an invoice reads the same wherever
 * it is printed.
 *
 * A value is one of:
 * - `now`, `today`, `yesterday`;
 * - a day `2026-11-01`, a month `2026-11`;
 * - an instant `2026-11-01T12:30`, `2026-11-01 12:30:00`, `2026-11-01T12:30:00+01:00` (UTC unless it says);
 * - an age: `7d`, `12h`, `1h30m`, optionally written `-7d` or `7d ago` (that long before now).
 * A day, month, `today` or `yesterday` given to `--to` includes that whole day or month: `--from 2026-11-01
 * --to 2026-11-30` is all of November.
 */
import { DurationError, parseDuration } from "./format.js";

export class PeriodError extends Error {
  override name = "PeriodError";
}

const DAY_MS = 86_400_000;

/** The start of a calendar unit, and the start of the next one (for an inclusive `--to`). */
interface CalendarSpan {
  startMs: number;
  nextMs: number;
}

function utcDay(year: number, month: number, day: number): CalendarSpan | undefined {
  const startMs = Date.UTC(year, month - 1, day);
  const date = new Date(startMs);
  // Date.UTC rolls 2026-02-30 over into March: a day that does not exist is refused instead.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  return { startMs, nextMs: startMs + DAY_MS };
}

function utcMonth(year: number, month: number): CalendarSpan | undefined {
  if (month < 1 || month > 12) return undefined;
  return { startMs: Date.UTC(year, month - 1, 1), nextMs: Date.UTC(year, month, 1) };
}

function today(nowMs: number): CalendarSpan {
  const startMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
  return { startMs, nextMs: startMs + DAY_MS };
}

function calendarSpan(text: string, nowMs: number): CalendarSpan | undefined {
  if (text === "today") return today(nowMs);
  if (text === "yesterday") {
    const t = today(nowMs);
    return { startMs: t.startMs - DAY_MS, nextMs: t.startMs };
  }
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (day) return utcDay(Number(day[1]), Number(day[2]), Number(day[3]));
  const month = /^(\d{4})-(\d{2})$/.exec(text);
  if (month) return utcMonth(Number(month[1]), Number(month[2]));
  return undefined;
}

const INSTANT = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})?$/i;

function instant(text: string): number | undefined {
  const match = INSTANT.exec(text);
  if (!match) return undefined;
  const [, date, time, zone] = match;
  const day = calendarSpan(date!, 0);
  if (!day) return undefined;
  const [h, m, s] = time!.split(":").map(Number);
  if (h! > 23 || m! > 59 || (s ?? 0) >= 60) return undefined;
  const offset = zone ? zone.toUpperCase().replace(/^([+-]\d{2})(\d{2})$/, "$1:$2") : "Z";
  const ms = Date.parse(`${date}T${time}${offset}`);
  return Number.isFinite(ms) ? ms : undefined;
}

function age(text: string): number | undefined {
  const match = /^-?\s*(.+?)(?:\s+ago)?$/.exec(text);
  const duration = match?.[1] ?? "";
  // A bare number is not an age: "7" could as well be a day of the month or a Unix time.
  if (/^\d+$/.test(duration)) return undefined;
  try {
    return parseDuration(duration) * 1000;
  } catch (err) {
    if (err instanceof DurationError) return undefined;
    throw err;
  }
}

/**
 * One `--from`/`--to` value as milliseconds since the epoch. `end` makes a calendar value inclusive (the start
 * of the next day or month); instants and ages are exact either way.
 */
export function parseInstant(input: string, nowMs: number, end = false): number {
  const text = input.trim().toLowerCase();
  if (text === "now") return nowMs;
  const span = calendarSpan(text, nowMs);
  if (span) return end ? span.nextMs : span.startMs;
  const at = instant(text);
  if (at !== undefined) return at;
  const ago = age(text);
  if (ago !== undefined) return nowMs - ago;
  throw new PeriodError(
    `not a date or time (use e.g. 2026-11-01, 2026-11, 2026-11-01T12:00, today, yesterday, now or an age like 7d): ${JSON.stringify(input)}`,
  );
}

export interface PeriodFlags {
  from?: string;
  to?: string;
  month?: string;
}

/** What the billing RPCs take: 0 for `fromMs` = from the beginning, 0 for `toMs` = up to now. */
export interface Period {
  fromMs: number;
  toMs: number;
}

/** Resolves the flags into a window; refuses an empty or backwards one, and `--month` with `--from`/`--to`. */
export function resolvePeriod(flags: PeriodFlags, nowMs: number): Period {
  if (flags.month !== undefined) {
    if (flags.from !== undefined || flags.to !== undefined) {
      throw new PeriodError("--month cannot be combined with --from or --to");
    }
    const text = flags.month.trim().toLowerCase();
    let span: CalendarSpan | undefined;
    if (text === "this" || text === "current") span = monthOf(nowMs, 0);
    else if (text === "last" || text === "previous") span = monthOf(nowMs, -1);
    else {
      const m = /^(\d{4})-(\d{2})$/.exec(text);
      span = m ? utcMonth(Number(m[1]), Number(m[2])) : undefined;
    }
    if (!span) throw new PeriodError(`--month takes YYYY-MM, this or last, got ${JSON.stringify(flags.month)}`);
    return { fromMs: span.startMs, toMs: span.nextMs };
  }
  const fromMs = flags.from === undefined ? 0 : parseInstant(flags.from, nowMs, false);
  const toMs = flags.to === undefined ? 0 : parseInstant(flags.to, nowMs, true);
  if (fromMs < 0 || toMs < 0) throw new PeriodError("dates before 1970 are not supported");
  if (toMs > 0 && fromMs >= toMs) {
    throw new PeriodError(`--from (${formatInstant(fromMs)}) must be before --to (${formatInstant(toMs)})`);
  }
  if (toMs === 0 && fromMs > nowMs) throw new PeriodError(`--from (${formatInstant(fromMs)}) is in the future`);
  return { fromMs, toMs };
}

function monthOf(nowMs: number, offset: number): CalendarSpan {
  const d = new Date(nowMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + offset;
  return { startMs: Date.UTC(y, m, 1), nextMs: Date.UTC(y, m + 1, 1) };
}

/** An instant as UTC ISO without milliseconds: "2026-11-01T12:30:00Z". */
export function formatInstant(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The window for a header: "all time", "since …", "until …" or "… to …" (the end excluded). */
export function describePeriod(period: Period): string {
  if (period.fromMs <= 0 && period.toMs <= 0) return "all time";
  if (period.toMs <= 0) return `since ${formatInstant(period.fromMs)}`;
  if (period.fromMs <= 0) return `until ${formatInstant(period.toMs)}`;
  return `${formatInstant(period.fromMs)} to ${formatInstant(period.toMs)}`;
}
