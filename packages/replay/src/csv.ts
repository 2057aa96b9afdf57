/**
 * CSV reading for traces and fleets: csv-parse does the format (quotes, CRLF, BOM); this file maps its records
 * and errors to line/column positions and checks the header, so every bad input is reported where it is.
 */
import { CsvError, parse } from "csv-parse/sync";
import type { InputError } from "./errors.js";

export interface CsvRow {
  /** 1-based line of the row in the file (the header is line 1). */
  line: number;
  cells: Record<string, string>;
}

export type ErrorFactory = (
  line: number,
  column: number,
  columnName: string,
  detail: string,
  cause?: unknown,
) => InputError;

export interface CsvTable {
  header: string[];
  rows: CsvRow[];
  /** 1-based column of a header name, for error messages. */
  columnOf(name: string): number;
}

/** Parses `text`; throws the factory's error for a malformed file or a missing required column. */
export function readCsv(text: string, required: readonly string[], fail: ErrorFactory): CsvTable {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, {
      bom: true,
      info: true,
      skip_empty_lines: true,
      trim: true,
      relax_column_count: false,
    }) as unknown as typeof records;
  } catch (error) {
    if (error instanceof CsvError) {
      const e = error as CsvError & { lines?: number; column?: number | string };
      const column = typeof e.column === "number" ? e.column + 1 : 0;
      throw fail(e.lines ?? 0, column, "", error.message, error);
    }
    throw error;
  }
  const [first, ...rest] = records;
  if (!first) throw fail(1, 0, "", `empty file: expected a header with ${required.join(",")}`);
  const header = first.record.map((h) => h.toLowerCase());
  const index = new Map(header.map((h, i) => [h, i]));
  for (const name of required) {
    if (!index.has(name)) throw fail(1, 0, "", `missing column ${name} (header: ${header.join(",")})`);
  }
  const rows = rest.map(({ record, info }) => ({
    line: info.lines,
    cells: Object.fromEntries(header.map((h, i) => [h, record[i] ?? ""])),
  }));
  return { header, rows, columnOf: (name) => (index.get(name) ?? -1) + 1 };
}
