/**
 * How answers are printed: `-o json|yaml|wide|name` (and the older `--json`) on every verb that prints, colour
 * only on a terminal and never with NO_COLOR, and tables fitted to the terminal's width. The choice is made once
 * per invocation (main.ts calls `configureOutput`), then printJson / renderTable follow it, so each verb keeps one
 * code path for documents and one for tables.
 */
import { stringify } from "yaml";

export const OUTPUT_FORMATS = ["json", "yaml", "wide", "name"] as const;
export type OutputFormat = "table" | (typeof OUTPUT_FORMATS)[number];

export interface OutputSettings {
  format: OutputFormat;
  /** Colour table states and headers (a TTY without NO_COLOR). */
  colour: boolean;
  /** Fit tables to this many columns; undefined = never cut (a pipe, a file). */
  width: number | undefined;
}

const settings: OutputSettings = { format: "table", colour: false, width: undefined };

export function outputSettings(): Readonly<OutputSettings> {
  return settings;
}

export function configureOutput(next: Partial<OutputSettings>): void {
  Object.assign(settings, next);
}

/** Colour only on a terminal, never with NO_COLOR (any non-empty value, https://no-color.org) or TERM=dumb. */
export function shouldColour(isTTY: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return isTTY === true;
}

/** $COLUMNS when set, else the terminal's width; undefined when stdout is not a terminal (never cut). */
export function terminalWidth(isTTY: boolean | undefined, columns: number | undefined, env: NodeJS.ProcessEnv) {
  const fromEnv = Number(env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return isTTY && columns && columns > 0 ? columns : undefined;
}

/** `-o FORMAT` / `--json` → the format ("table" when neither). */
export function formatFromFlags(flags: { output?: string; json?: boolean }): OutputFormat {
  if (flags.output !== undefined) return flags.output as OutputFormat;
  return flags.json ? "json" : "table";
}

/** True when a verb should build its document rather than its table. */
export function wantsDocument(format: OutputFormat = settings.format): boolean {
  return format === "json" || format === "yaml" || format === "name";
}

const NAME_KEYS = ["id", "jobId", "receiptId", "agentId", "taskId", "tenant"] as const;

/** The names `-o name` prints for a document: the ids of the listed things, one per line. */
export function namesOf(doc: unknown): string[] {
  if (Array.isArray(doc)) return doc.flatMap(nameOfItem);
  if (doc && typeof doc === "object") {
    const record = doc as Record<string, unknown>;
    for (const key of ["jobs", "agents", "offers", "receipts", "lines", "regions"]) {
      const value = record[key];
      if (Array.isArray(value)) return value.flatMap(nameOfItem);
    }
    for (const key of ["job", "agent", "receipt", "explanation", "policy", "limits"]) {
      if (record[key] && typeof record[key] === "object") return nameOfItem(record[key]);
    }
    return nameOfItem(doc);
  }
  return [];
}

function nameOfItem(item: unknown): string[] {
  if (!item || typeof item !== "object") return item === undefined ? [] : [String(item)];
  const record = item as Record<string, unknown>;
  for (const key of NAME_KEYS) {
    const value = record[key];
    if (typeof value === "string" && value !== "") return [`${kindOf(key)}/${value}`];
  }
  if (typeof record.region === "string" && typeof record.gpuModel === "string")
    return [`offer/${record.region}/${record.gpuModel}`];
  if (typeof record.profile === "string") return [`policy/${record.profile}`];
  return [];
}

function kindOf(key: string): string {
  return { id: "job", jobId: "job", receiptId: "receipt", agentId: "agent", taskId: "task", tenant: "tenant" }[key]!;
}

/** One document in the chosen format (json: indented; yaml; name: one name per line). */
export function renderDocument(doc: unknown, format: OutputFormat = settings.format): string {
  const plain = JSON.parse(JSON.stringify(doc, bigints)) as unknown;
  if (format === "yaml") return stringify(plain).trimEnd();
  if (format === "name") return namesOf(plain).join("\n");
  return JSON.stringify(plain, null, 2);
}

/** One item of a stream: json is one compact line; yaml a `---` document; name its name. */
export function renderStreamItem(doc: unknown, format: OutputFormat = settings.format): string {
  const plain = JSON.parse(JSON.stringify(doc, bigints)) as unknown;
  if (format === "yaml") return `---\n${stringify(plain).trimEnd()}`;
  if (format === "name") return namesOf(plain).join("\n");
  return JSON.stringify(plain);
}

function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}

/** SGR codes: whether to colour is decided here (shouldColour), so no library second-guesses it. */
const SGR = { bold: 1, red: 31, green: 32, yellow: 33, magenta: 35, cyan: 36, gray: 90 } as const;
type Style = keyof typeof SGR;

function style(name: Style, text: string): string {
  return `\u001b[${SGR[name]}m${text}\u001b[0m`;
}

const STATE_STYLES: Record<string, Style> = {
  RUNNING: "green",
  SUCCEEDED: "green",
  PLACED: "cyan",
  ASSIGNED: "cyan",
  STARTING: "cyan",
  PENDING: "yellow",
  RESCHEDULING: "yellow",
  PREEMPTED: "magenta",
  FAILED: "red",
  LOST: "red",
  REJECTED: "red",
  CANCELLED: "gray",
  ready: "green",
  draining: "yellow",
  lost: "red",
};

/** A padded table cell, coloured when colour is on and the cell is a state. */
export function colourCell(padded: string, colour = settings.colour): string {
  if (!colour) return padded;
  const name = STATE_STYLES[padded.trim()];
  return name ? style(name, padded) : padded;
}

export function colourHeader(line: string, colour = settings.colour): string {
  return colour ? style("bold", line) : line;
}
