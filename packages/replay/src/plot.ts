/**
 * The replay's plot: one SVG with three charts sharing the time axis (hours since the trace's first
 * submission), one line per policy: spend rate ($/h), queue length (jobs waiting), cumulative cost ($).
 * Vega-Lite describes the charts and Vega renders them to SVG headless (no browser, no canvas). Pure apart
 * from Vega's own work: data in, SVG text out.
 */
import type { TopLevelSpec } from "vega-lite";
import type { ReplayResult } from "./simulate.js";

/** The Vega-Lite spec of the plot (exported for tests and for the console, which renders the same spec). */
export function plotSpec(result: ReplayResult, title = "capa replay"): TopLevelSpec {
  const t0 = result.policies[0]?.timeline[0]?.t ?? 0;
  const values = result.policies.flatMap((p) =>
    p.timeline.map((pt) => ({
      policy: p.name,
      hours: Math.round(((pt.t - t0) / 3600) * 1000) / 1000,
      rate: Math.round(pt.rateMicrosPerHour / 10_000) / 100,
      queue: pt.queue,
      cumulative: Math.round(pt.cumulativeMicros / 10_000) / 100,
    })),
  );
  const chart = (field: string, label: string, whole = false) => ({
    width: 720,
    height: 180,
    mark: { type: "line" as const, interpolate: "step-after" as const, strokeWidth: 1.5 },
    encoding: {
      x: { field: "hours", type: "quantitative" as const, title: "hours since the first submission" },
      // Jobs are counted in whole numbers (an all-zero queue would otherwise be labelled "0.000000").
      y: {
        field,
        type: "quantitative" as const,
        title: label,
        ...(whole ? { axis: { format: "d", tickMinStep: 1 } } : {}),
      },
      color: { field: "policy", type: "nominal" as const, title: "policy" },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${title}: ${result.jobs} jobs over ${result.agents} agents (${result.gpus} GPUs), seed ${result.seed}`,
    data: { values },
    vconcat: [
      chart("rate", "spend rate ($/h)"),
      chart("queue", "jobs waiting", true),
      chart("cumulative", "cumulative cost ($)"),
    ],
    config: { background: "white" },
  } as TopLevelSpec;
}

/** Renders the plot to SVG text. */
export async function renderPlotSvg(result: ReplayResult, title?: string): Promise<string> {
  // Loaded on first use: Vega is large, and every `capa` verb imports this package's entry.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const spec = compile(plotSpec(result, title)).spec;
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
