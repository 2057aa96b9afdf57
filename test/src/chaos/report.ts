/** The fault suite's figures and the table `npm run chaos` prints (Fault | Figure | Goal | Measured | Met). */

export interface Figure {
  fault: string;
  figure: string;
  goal: string;
  measured: string;
  met: boolean;
  /**
   * "count" goals (lost, duplicated, violations) must hold on any machine and fail the CI suite; "latency" goals
   * are figures, judged in `npm run chaos`'s table only (a loaded CI machine is no benchmark).
   */
  kind: "count" | "latency";
}

/** p-th percentile (nearest rank) of a sample; NaN for an empty one. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const seconds = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "n/a");

/** A figure in seconds against "≤ goal s". */
export function withinSeconds(fault: string, figure: string, ms: number, goalSeconds: number): Figure {
  return {
    fault,
    figure,
    goal: `≤ ${goalSeconds} s`,
    measured: seconds(ms),
    met: Number.isFinite(ms) && ms <= goalSeconds * 1000,
    kind: "latency",
  };
}

/** A count against "0". */
export function none(fault: string, figure: string, count: number, detail = ""): Figure {
  return {
    fault,
    figure,
    goal: "0",
    measured: `${count}${detail ? ` (${detail})` : ""}`,
    met: count === 0,
    kind: "count",
  };
}

export function table(figures: readonly Figure[]): string {
  const rows = [
    ["Fault", "Figure", "Goal", "Measured", "Met"],
    ...figures.map((f) => [f.fault, f.figure, f.goal, f.measured, f.met ? "yes" : "NO"]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}
