/**
 * Durations in job files and spec flags: hours, minutes and seconds in that order, each at most once, whole
 * numbers only: `90m`, `2h`, `1h30m`, `45s`, `1h30m15s`. Anything else is an error, on purpose: a bare `2` (hours?
 * seconds?) or `2 hours` used to be read silently as something else, so they are refused with a hint.
 */
export class DurationError extends Error {
  override name = "DurationError";
}

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Largest duration accepted anywhere (a year): bounds every field that takes one. */
export const MAX_DURATION_SECONDS = 365 * 24 * 3600;

export function parseDuration(input: string): number {
  const text = input.trim();
  const match = DURATION.exec(text);
  if (text === "" || !match) throw new DurationError(durationHint(input));
  const [, h = "0", m = "0", s = "0"] = match;
  const seconds = Number(h) * 3600 + Number(m) * 60 + Number(s);
  if (!Number.isSafeInteger(seconds) || seconds > MAX_DURATION_SECONDS) {
    throw new DurationError(`duration ${JSON.stringify(input)} is longer than a year`);
  }
  return seconds;
}

function durationHint(input: string): string {
  const text = input.trim();
  if (/^\d+$/.test(text)) return `${JSON.stringify(input)} has no unit: write ${text}h, ${text}m or ${text}s`;
  return `not a duration: ${JSON.stringify(input)} (use e.g. 90m, 2h, 1h30m, 45s)`;
}

/** The shortest text parseDuration reads back as the same number of seconds (0 → "0s"). */
export function formatDuration(totalSeconds: number): string {
  let rest = Math.max(0, Math.round(totalSeconds));
  if (rest === 0) return "0s";
  let out = "";
  for (const [unit, size] of [
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out;
}
