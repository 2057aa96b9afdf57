/**
 * `npm run bench` — the placement engine's benchmark: figures, not timed tests (nothing passes or fails on
 * speed). Prints a table; with `--json` also one JSON object as the last line:
 *   {"runs":[{"agents","placementsPerSec","p50DecisionMicros","p99DecisionMicros","gangPlacementsPerSec",…}],
 *    "cost":{"instances","costToLpBound","costVsBaseline":{"firstFit","random","spread","cheapestSingleRegion"}}}
 * Flags: --json; --quick (a smoke run: fewer decisions, two small cost instances); --sizes 1000,10000,50000;
 *        --cost-instances N, --cost-agents N, --cost-jobs N (cost instances: count, fleet size, arrivals each);
 *        --replay-jobs N, --replay-agents N (the replay run, default 20000 × 1000; --quick 2000 × 200); --no-replay.
 * Environment: CAPA_DATA_DIR (default ../shared/data beside the repository; a built-in catalog without it).
 * Everything runs in this process, single-threaded: the throughput figures are for one core.
 */
import { availableParallelism, cpus } from "node:os";
import { PlacementEngine } from "@capa/placement";
import { runCost } from "./cost.js";
import { loadData } from "./data.js";
import { runReplayBench } from "./replay.js";
import { runThroughput, type ThroughputRun } from "./throughput.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells
    .map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  "))
    .join("\n");
}

const pct = (ratio: number) => `${Math.round((1 - ratio) * 1000) / 10}%`;

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const quick = process.argv.includes("--quick");
  const sizes = (flag("--sizes") ?? "1000,10000,50000").split(",").map(Number);
  const costInstances = Number(flag("--cost-instances") ?? (quick ? 2 : 6));
  const costAgents = Number(flag("--cost-agents") ?? (quick ? 80 : 150));
  const costJobs = Number(flag("--cost-jobs") ?? (quick ? 500 : 1000));
  const replayJobs = Number(flag("--replay-jobs") ?? (quick ? 2000 : 20_000));
  const replayAgents = Number(flag("--replay-agents") ?? (quick ? 200 : 1000));

  const started = process.hrtime.bigint();
  const data = loadData();
  console.log(
    `capa placement benchmark — node ${process.version}, ${cpus()[0]?.model ?? "cpu"} ×${availableParallelism()} (measured single-threaded)`,
  );
  console.log(
    `data: ${data.source}: ${data.offers.length} priced instance offers, ${data.pods.length} trace pods, ${data.serviceSizes.length} inference services`,
  );
  const skipped = Object.entries(data.skipped)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  if (skipped) console.log(`catalog rows set aside: ${skipped}`);

  const engine = new PlacementEngine({ activeProfile: "cheapest" });
  const runs: ThroughputRun[] = [];
  for (const size of sizes) {
    const decisions = quick ? 3000 : size >= 50_000 ? 15_000 : 20_000;
    runs.push(runThroughput(engine, size, data, 42 + size, decisions, quick ? 300 : 2000));
  }
  console.log("\nDecision throughput, one core, profile cheapest (single-GPU jobs from the trace; gangs 8 × 8 GPUs)");
  console.log(
    table(
      [
        "agents",
        "placements/s",
        "p50 µs",
        "p99 µs",
        "placed",
        "gangs/s",
        "gang p99 µs",
        "gangs placed",
        "index build ms",
      ],
      runs.map((r) => [
        r.agents,
        r.placementsPerSec,
        r.p50DecisionMicros,
        r.p99DecisionMicros,
        r.singlePlacedShare,
        r.gangPlacementsPerSec,
        r.gangP99DecisionMicros,
        r.gangPlacedShare,
        r.buildMillis,
      ]),
    ),
  );

  const base = { instances: costInstances, agentsPerInstance: costAgents, jobsPerInstance: costJobs, seed: 7 };
  const cost = await runCost(data, { ...base, load: 0.6, lp: true });
  const light = await runCost(data, { ...base, load: 0.3, lp: false });
  console.log(
    `\nCost: ${cost.instances} instances × ${cost.agentsPerInstance} agents, ${cost.jobs} arrivals in all, online, offered load 60% (and 30%, no LP)`,
  );
  const row = (name: string, c: typeof cost) => c.costVsBaseline[name as keyof typeof c.costVsBaseline];
  const free = (name: string, c: typeof cost) =>
    c.costVsBaselineUnconstrained[name as keyof typeof c.costVsBaselineUnconstrained];
  console.log(
    table(
      ["placer", "jobs placed", "ours ÷ theirs", "cheaper by", "unconstrained jobs", "at 30% load", "unconstrained"],
      [
        ["ours (cheapest)", cost.placed.ours, "", "", "", "", ""],
        ...Object.keys(cost.costVsBaseline).map((name) => [
          name,
          cost.placed[name as keyof typeof cost.placed],
          row(name, cost),
          pct(row(name, cost)),
          free(name, cost),
          row(name, light),
          free(name, light),
        ]),
      ],
    ),
  );
  console.log(
    `our cost ÷ LP lower bound (HiGHS): ${cost.costToLpBound}  — largest LP ${cost.lpSize.columns} columns × ${cost.lpSize.rows} rows, ${cost.lpSize.nonzeros} nonzeros; ${cost.lpSeconds}s solving`,
  );
  // The economics goal: ≥ 30% cheaper than every cost-blind baseline while placing at least as many jobs; where
  // an oracle could not reach 30% on that baseline's own work, the ceiling and how close we are.
  console.log("\nEconomics vs the cost-blind baselines (60% load; saving over the jobs both placed):");
  console.log(
    table(
      ["baseline", "we save", "oracle ceiling", "of the ceiling", "placed: ours / theirs", "goal ≥ 30% and ≥ as many"],
      Object.entries(cost.oracleVsBaseline).map(([name, oracle]) => {
        const ours = cost.costVsBaseline[name as keyof typeof cost.costVsBaseline];
        const theirs = cost.placed[name as keyof typeof cost.placed];
        const met = 1 - ours >= 0.3 && cost.placed.ours >= theirs;
        const verdict = met ? "met" : 1 - (oracle ?? 1) < 0.3 ? "out of reach (ceiling < 30%)" : "not met";
        return [
          name,
          pct(ours),
          pct(oracle ?? 1),
          `${Math.round(((1 - ours) / (1 - (oracle ?? 1))) * 1000) / 10}%`,
          `${cost.placed.ours} / ${theirs}`,
          verdict,
        ];
      }),
    ),
  );
  console.log(
    "oracle ceiling = 1 − LP bound of the baseline's own placed jobs at their times ÷ its cost: no placer can save more on that work",
  );
  console.log(`cheapestSingleRegion fell back outside its home region ${cost.cheapestSingleRegionFallbacks} times`);
  const replayRun = process.argv.includes("--no-replay")
    ? undefined
    : runReplayBench(data, replayJobs, replayAgents, 0.8, 7);
  if (replayRun) {
    const { result } = replayRun;
    const active = result.policies.find((p) => p.name === "active")!;
    console.log(
      `\nReplay: ${result.jobs} jobs over ${result.agents} agents (${result.gpus} GPUs), offered load 80%, jobs wait when they do not fit; ${replayRun.seconds}s wall, ${replayRun.cpuSeconds}s CPU for ${result.policies.length} policies (one thread)`,
    );
    console.log(
      table(
        [
          "policy",
          "placed",
          "waiting",
          "cost $",
          "ours ÷ theirs",
          "mean wait s",
          "p99 wait s",
          "GPU util",
          "run time s",
        ],
        result.policies.map((p) => [
          p.name,
          p.placed,
          p.neverStarted,
          Math.round(p.costMicros / 1e6),
          p === active ? "" : Math.round((active.costMicros / p.costMicros) * 10_000) / 10_000,
          p.meanQueueS,
          p.p99QueueS,
          p.utilisation,
          Math.round(p.wallMs / 100) / 10,
        ]),
      ),
    );
  }
  console.log(`total ${Math.round(Number(process.hrtime.bigint() - started) / 1e8) / 10}s`);

  if (json) {
    const result = {
      runs: runs.map((r) => ({
        agents: r.agents,
        placementsPerSec: r.placementsPerSec,
        p50DecisionMicros: r.p50DecisionMicros,
        p99DecisionMicros: r.p99DecisionMicros,
        gangPlacementsPerSec: r.gangPlacementsPerSec,
      })),
      cost: {
        instances: cost.instances,
        costToLpBound: cost.costToLpBound,
        costVsBaseline: cost.costVsBaseline,
        oracleVsBaseline: cost.oracleVsBaseline,
        placed: cost.placed,
      },
      replay: replayRun && {
        jobs: replayRun.jobs,
        agents: replayRun.agents,
        seconds: replayRun.seconds,
        cpuSeconds: replayRun.cpuSeconds,
        policies: replayRun.result.policies.map((p) => ({ name: p.name, placed: p.placed, costMicros: p.costMicros })),
      },
    };
    console.log(JSON.stringify(result));
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
