/**
 * Model metrics a service replica reports on its stdout: a line `CAPA_METRICS {"predictions": 120, "drift_score":
 * 0.31}` (JSON object of numbers). The parser is fed raw output chunks (lines may be split anywhere), keeps the
 * latest value of each metric, and is bounded: a line over 4 KiB is dropped, at most 32 metrics, names
 * `[a-z_][a-z0-9_]{0,63}`, finite numbers only; anything else on the line is ignored, never fatal.
 */
export const METRICS_MARKER = "CAPA_METRICS ";
const MAX_LINE = 4_096;
const MAX_METRICS = 32;
const NAME = /^[a-z_][a-z0-9_]{0,63}$/;

/** One line → its metrics, or undefined when it is not a valid marker line. */
export function parseMetricsLine(line: string): Record<string, number> | undefined {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (!text.startsWith(METRICS_MARKER)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text.slice(METRICS_MARKER.length));
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return undefined;
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(doc)) {
    if (!NAME.test(name) || typeof value !== "number" || !Number.isFinite(value)) continue;
    out[name] = value;
  }
  return out;
}

export class ModelMetrics {
  private partial = "";
  private overlong = false;
  readonly latest = new Map<string, number>();

  /** Feeds a stdout chunk. */
  write(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!this.overlong) this.take(line);
      this.overlong = false;
    }
    if (this.partial.length > MAX_LINE) {
      this.partial = "";
      this.overlong = true;
    }
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.latest);
  }

  private take(line: string): void {
    if (line.length > MAX_LINE) return;
    const metrics = parseMetricsLine(line);
    if (!metrics) return;
    for (const [name, value] of Object.entries(metrics)) {
      if (!this.latest.has(name) && this.latest.size >= MAX_METRICS) continue;
      this.latest.set(name, value);
    }
  }
}
