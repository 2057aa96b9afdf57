/**
 * Pure formatting for people: aligned tables, money, durations, ages and states. Everything here is
 * deterministic (the clock is a parameter) so it is unit-tested without a scheduler.
 */
import { formatUsd, type Micros } from "@capa/domain";
import { colourCell, colourHeader, outputSettings } from "./output.js";

export type Cell = string | number | boolean | undefined | null;

/**
 * Renders rows under a header with columns padded to their widest cell. Columns listed in `rightAlign`
 * (by index) are right-aligned: numbers and money read better that way.
 * Cells never contain newlines: they are replaced, so one row stays one line.
 */
export function renderTable(
  header: string[],
  rows: Cell[][],
  options: { rightAlign?: number[]; maxWidth?: number; colour?: boolean } = {},
): string {
  const text = (cell: Cell) => (cell === undefined || cell === null ? "" : String(cell).replace(/\s*\n\s*/g, " "));
  const body = rows.map((row) => header.map((_, i) => text(row[i])));
  const natural = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const widths = fitWidths(natural, options.maxWidth ?? outputSettings().width);
  const colour = options.colour ?? outputSettings().colour;
  const right = new Set(options.rightAlign ?? []);
  const line = (cells: string[], isHeader: boolean) =>
    cells
      .map((raw, i) => {
        const cell = cut(raw, widths[i]!);
        const last = i === cells.length - 1;
        const padded = right.has(i) ? cell.padStart(widths[i]!) : last ? cell : cell.padEnd(widths[i]!);
        return isHeader ? padded : colourCell(padded, colour);
      })
      .join("  ")
      .trimEnd();
  return [colourHeader(line(header, true), colour), ...body.map((r) => line(r, false))].join("\n");
}

/** Narrowest a column is cut to when a table must fit the terminal. */
const MIN_COLUMN = 6;

/**
 * Column widths that fit `maxWidth` (separators included) by narrowing the widest columns first, none below
 * MIN_COLUMN (a table with many columns may still overflow a very narrow terminal). No limit: as they are.
 */
export function fitWidths(natural: readonly number[], maxWidth: number | undefined): number[] {
  const widths = [...natural];
  if (!maxWidth) return widths;
  let total = widths.reduce((a, b) => a + b, 0) + 2 * Math.max(0, widths.length - 1);
  while (total > maxWidth) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++)
      if (widths[i]! > MIN_COLUMN && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    if (widest < 0) break;
    widths[widest]!--;
    total--;
  }
  return widths;
}

/** A cell cut to `width` characters, ending in "…" when it was longer. */
function cut(cell: string, width: number): string {
  return cell.length <= width ? cell : `${cell.slice(0, Math.max(0, width - 1))}…`;
}

/** A price per GPU-hour for a table cell; "-" when there is none (0 means "not offered"). */
export function formatPrice(micros: Micros | undefined): string {
  if (micros === undefined || micros <= 0) return "-";
  return formatUsd(micros);
}

/** Money that may legitimately be zero (spend, budget caps show "-" via formatPrice instead). */
export function formatAmount(micros: Micros): string {
  return formatUsd(micros);
}

export class DurationError extends Error {
  override name = "DurationError";
}

const UNIT_SECONDS: Record<string, number> = { d: 86_400, h: 3_600, m: 60, s: 1 };

/**
 * Parses "2h", "90m", "1h30m", "45s", "1d" or a bare number of seconds into whole seconds. Fractions are
 * allowed per unit ("1.5h") and rounded to the second; zero is fine, negatives and junk are errors.
 */
export function parseDuration(input: string): number {
  const text = input.trim().toLowerCase();
  if (/^\d+$/.test(text)) return Number(text);
  const part = /(\d+(?:\.\d+)?)([dhms])/g;
  let seconds = 0;
  let consumed = 0;
  for (const match of text.matchAll(part)) {
    if (match.index !== consumed) break;
    seconds += Number(match[1]) * UNIT_SECONDS[match[2]!]!;
    consumed += match[0].length;
  }
  if (text === "" || consumed !== text.length) {
    throw new DurationError(`not a duration (use e.g. 90s, 15m, 2h, 1h30m, 1d): ${JSON.stringify(input)}`);
  }
  return Math.round(seconds);
}

/** Seconds as a short human duration: 0s, 45s, 1m30s, 2h, 2h5m, 1d3h. */
export function formatDuration(totalSeconds: number): string {
  let s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s}s`;
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.join("");
}

/** "12s ago"-style age of a timestamp; "-" for 0 (never). */
export function formatAge(atMs: number, nowMs: number): string {
  if (!atMs) return "-";
  return `${formatDuration((nowMs - atMs) / 1000)} ago`;
}

/** Job and task states are shown upper-case in tables, as the proto names them without their prefix. */
export function formatState(state: string): string {
  return state.toUpperCase();
}

/** "eu-west,us-east" for a list; "any" when the list is empty (empty means "no constraint"). */
export function formatList(values: readonly string[], empty = "any"): string {
  return values.length === 0 ? empty : values.join(",");
}

/** GPU indices as "0,1,2"; "-" when none. */
export function formatIndices(indices: readonly number[]): string {
  return indices.length === 0 ? "-" : indices.join(",");
}

/** Key/value lines ("name:  value"), aligned, for detail views. */
export function renderFields(fields: [string, Cell][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${v ?? ""}`.trimEnd()).join("\n");
}

/** Prefixes every line of a log chunk; a chunk that does not end its last line still ends the output line. */
export function prefixLines(text: string, prefix: string): string {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((l) => `${prefix}${l}\n`).join("");
}
