/**
 * `npm run bench` — placement engine benchmark. Prints a table; with `--json` also one JSON object as the last
 * line. Figures, not timed tests: nothing here passes or fails on speed.
 *   --json            also print the JSON result
 *   --sizes 1000,10000,50000   fleet sizes for the throughput runs
 *   --quick           fewer decisions and cost instances (a smoke run)
 * Environment: CAPA_DATA_DIR (default ../shared/data beside the repository).
 */
import { PlacementEngine } from "@capa/placement";
import { loadData } from "./data.js";
import { runThroughput, type ThroughputRun } from "./throughput.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const quick = process.argv.includes("--quick");
  const sizes = (arg("--sizes") ?? "1000,10000,50000").split(",").map(Number);
  const data = loadData();
  console.log(`data: ${data.source} — ${data.offers.length} priced instance offers, ${data.pods.length} trace pods`);
  const skipped = Object.entries(data.skipped)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  if (skipped) console.log(`catalog rows skipped: ${skipped}`);

  const engine = new PlacementEngine({ activeProfile: "cheapest" });
  const runs: ThroughputRun[] = [];
  for (const size of sizes) {
    const decisions = quick ? 2000 : size >= 50_000 ? 10_000 : 20_000;
    const gangDecisions = quick ? 200 : 2000;
    runs.push(runThroughput(engine, size, data, 42 + size, decisions, gangDecisions));
    const r = runs[runs.length - 1]!;
    console.log(
      `${String(r.agents).padStart(6)} agents  ${String(r.placementsPerSec).padStart(7)}/s  p50 ${r.p50DecisionMicros}µs  p99 ${r.p99DecisionMicros}µs  gangs ${r.gangPlacementsPerSec}/s (p99 ${r.gangP99DecisionMicros}µs)  placed ${r.singlePlacedShare} / gangs ${r.gangPlacedShare}  build ${r.buildMillis}ms`,
    );
  }
  if (json) console.log(JSON.stringify({ runs }));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
