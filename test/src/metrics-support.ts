/**
 * Prometheus helpers for the metrics suites: scrape an endpoint and parse it with a real text-format parser
 * (parse-prometheus-text-format, a port of Prometheus' own), and list the metric names a PromQL query reads
 * (parsed with Prometheus' lezer grammar, so a dashboard query is checked as Prometheus would read it).
 */
import { parser } from "@prometheus-io/lezer-promql";
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";

export type { ParsedFamily } from "parse-prometheus-text-format";

export interface Scrape {
  text: string;
  /** Families as the parser reads the exposition (it throws on any malformed line). */
  families: Map<string, ParsedFamily>;
  /**
   * The same text with histogram and summary TYPE lines dropped, so that `<name>_count`, `_sum` and `_bucket`
   * are families of their own: the parser folds every label set of a histogram into one sample, which loses the
   * per-method and per-kind series the tests read.
   */
  series: Map<string, ParsedFamily>;
}

export async function scrape(address: string): Promise<Scrape> {
  const res = await fetch(`http://${address}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${address}/metrics answered ${res.status}`);
  const text = await res.text();
  const families = byName(parsePrometheusTextFormat(text));
  const series = byName(parsePrometheusTextFormat(text.replace(/^# TYPE \S+ (histogram|summary)$/gm, "")));
  return { text, families, series };
}

/** Families by name; an untyped histogram's `_bucket`/`_sum`/`_count` runs repeat per label set: merged. */
function byName(parsed: ParsedFamily[]): Map<string, ParsedFamily> {
  const out = new Map<string, ParsedFamily>();
  for (const f of parsed) {
    const seen = out.get(f.name);
    if (seen) seen.metrics.push(...f.metrics);
    else out.set(f.name, { ...f, metrics: [...f.metrics] });
  }
  return out;
}

/** The sum of a family's sample values whose labels include `match` (a histogram's: its observation counts). */
export function sumOf(s: Scrape, name: string, match: Record<string, string> = {}): number {
  const histogram = s.families.get(name)?.type === "HISTOGRAM";
  const family = histogram ? s.series.get(`${name}_count`) : s.families.get(name);
  if (!family) return 0;
  let total = 0;
  for (const m of family.metrics) {
    if (!Object.entries(match).every(([k, v]) => m.labels?.[k] === v)) continue;
    total += Number(m.value ?? 0);
  }
  return total;
}

/** Metric names in a PromQL expression (vector and matrix selectors; functions, labels and keywords excluded). */
export function metricNamesIn(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let errors = 0;
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) errors++;
    if (cursor.name === "Identifier" && cursor.node.parent?.name === "VectorSelector")
      names.push(expr.slice(cursor.from, cursor.to));
  } while (cursor.next());
  if (errors > 0) throw new Error(`PromQL does not parse: ${expr}`);
  return names;
}

/** The family a sample name belongs to: histogram series end in _bucket/_sum/_count. */
export function familyOf(name: string, families: ReadonlySet<string>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return families.has(base) ? base : undefined;
}
