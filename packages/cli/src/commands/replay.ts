/**
 * `capa replay`: what would cost, queueing and utilisation have been on this trace and fleet under these
 * policies? Offline (no scheduler): @capa/replay runs the trace in simulated time through the real placement
 * engine and the baselines. `capa replay convert` turns the public traces into capa's trace CSV.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { formatUsd } from "@capa/domain";
import { BUILTIN_PROFILES, DEFAULT_TABLES, type Profile, parseProfile } from "@capa/placement";
import {
  BASELINE_LABELS,
  BASELINES,
  type BaselineName,
  convertTrace,
  formatTrace,
  loadFleetData,
  loadReplayInputs,
  type PolicySpec,
  REPLAY_START_MS,
  type ReplayResult,
  renderPlotSvg,
  replay,
  replayJobs,
  runsLpBound,
  specOf,
  TRACE_FORMATS,
  type TraceFormat,
} from "@capa/replay";
import { Command } from "commander";
import { print } from "../context.js";
import { CliError } from "../errors.js";
import { formatDuration, renderTable } from "../format.js";
import { parseInteger } from "../spec.js";

interface ReplayFlags {
  trace?: string;
  traceFormat: string;
  fleet?: string;
  agents: number;
  dataDir?: string;
  active: string;
  profile: string[];
  baselines: string;
  seed: number;
  limit?: number;
  plot: string | false;
  lp: boolean;
  lpMaxRuns: number;
  json?: boolean;
}

const START_MS = REPLAY_START_MS;

const collect = (value: string, previous: string[]) => [...previous, value];

export function replayCommand(): Command {
  const cmd = new Command("replay")
    .description("replay a workload trace through the placement engine and the baselines, in simulated time")
    .option("--trace <file>", "trace CSV: job_id,submit_s,duration_s,gpus,gpu_model,kind[,...]")
    .option("--trace-format <format>", `capa (default) or a public trace: ${TRACE_FORMATS.join(", ")}`, "capa")
    .option("--fleet <file>", "fleet CSV: agent_id,region,gpu_model,gpus,price_per_gpu_hour[,spot_price]")
    .option("--agents <n>", "size of the generated fleet (without --fleet)", parseInteger, 1000)
    .option("--data-dir <dir>", "public data for the generated fleet (env CAPA_DATA_DIR; default ../shared/data)")
    .option("--active <profile>", "the active policy: a built-in profile name or a profile file", "cheapest")
    .option("--profile <profile>", "another profile to compare (name or file; repeatable)", collect, [])
    .option(
      "--baselines <list>",
      `comma-separated, or none (default all: ${BASELINES.map((b) => BASELINE_LABELS[b]).join(",")})`,
      "all",
    )
    .option("--seed <n>", "seed for tie-breaks, the random baseline and the generated fleet", parseInteger, 1)
    .option("--limit <n>", "replay only the first N jobs of the trace (by submit time)", parseInteger)
    .option("--plot <file>", "where to write the SVG plot", "capa-replay.svg")
    .option("--no-plot", "write no plot")
    .option("--no-lp", "skip the LP lower bound")
    .option("--lp-max-runs <n>", "largest number of runs the LP bound is solved for", parseInteger, 1500)
    .option("--json", "print one JSON object (the last stdout line) instead of the table")
    .action(async (flags: ReplayFlags) => {
      await runReplay(flags);
    });
  cmd.addCommand(
    new Command("convert")
      .description("convert a public trace to capa's trace CSV")
      .argument("<format>", TRACE_FORMATS.join(" | "))
      .argument("<file>", "the trace file")
      .option("-o, --output <file>", "write here instead of stdout")
      .option("--limit <n>", "keep the first N jobs", parseInteger)
      .action((format: string, file: string, flags: { output?: string; limit?: number }) => {
        const { jobs, skipped } = convertTrace(traceFormat(format), readText(file));
        const kept = flags.limit !== undefined ? jobs.slice(0, flags.limit) : jobs;
        const csv = formatTrace(kept);
        const notes = Object.entries(skipped).map(([k, n]) => `${k} ${n}`);
        process.stderr.write(`converted ${kept.length} jobs${notes.length ? ` (skipped: ${notes.join(", ")})` : ""}\n`);
        if (flags.output) writeFileSync(flags.output, csv);
        else process.stdout.write(csv);
      }),
  );
  return cmd;
}

function traceFormat(format: string): TraceFormat {
  if (!(TRACE_FORMATS as readonly string[]).includes(format)) {
    throw new CliError(`unknown trace format ${JSON.stringify(format)} (known: capa, ${TRACE_FORMATS.join(", ")})`);
  }
  return format as TraceFormat;
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

function loadProfile(ref: string): Profile {
  const builtin = BUILTIN_PROFILES.find((p) => p.name === ref);
  if (builtin) return builtin;
  if (!existsSync(ref)) {
    throw new CliError(
      `no built-in profile or file ${JSON.stringify(ref)} (built-in: ${BUILTIN_PROFILES.map((p) => p.name).join(", ")})`,
    );
  }
  return parseProfile(readText(ref));
}

function baselineList(text: string): BaselineName[] {
  if (text === "none") return [];
  if (text === "all") return [...BASELINES];
  return text.split(",").map((label) => {
    const name = BASELINES.find((b) => BASELINE_LABELS[b] === label.trim());
    if (!name) {
      throw new CliError(
        `unknown baseline ${JSON.stringify(label)} (known: ${BASELINES.map((b) => BASELINE_LABELS[b]).join(", ")}, all, none)`,
      );
    }
    return name;
  });
}

async function runReplay(flags: ReplayFlags): Promise<void> {
  const started = performance.now();
  if (!flags.trace) throw new CliError("replay needs --trace FILE (see capa replay --help)");
  const format = flags.traceFormat === "capa" ? "capa" : traceFormat(flags.traceFormat);
  const {
    trace: jobs,
    agents,
    fleetSource,
  } = loadReplayInputs({
    traceText: readText(flags.trace),
    traceFormat: format,
    traceName: flags.trace,
    ...(flags.fleet ? { fleetText: readText(flags.fleet), fleetName: flags.fleet } : {}),
    agents: flags.agents,
    seed: flags.seed,
    ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
    startMs: START_MS,
    fleetData: () => loadFleetData(flags.dataDir),
  });
  const policies: PolicySpec[] = [{ name: "active", profile: loadProfile(flags.active) }];
  for (const ref of flags.profile) {
    const profile = loadProfile(ref);
    policies.push({ name: profile.name, profile });
  }
  for (const b of baselineList(flags.baselines)) policies.push({ name: BASELINE_LABELS[b], baseline: b });

  const result = replay(replayJobs(jobs), agents, policies, { seed: flags.seed, startMs: START_MS });
  const lp = new Map<string, number>();
  if (flags.lp) {
    const specs = jobs.map(specOf);
    for (const p of result.policies) {
      if (p.runs.length > flags.lpMaxRuns) continue;
      const bound = await runsLpBound(p.runs, specs, agents, START_MS, DEFAULT_TABLES);
      if (bound) lp.set(p.name, bound.ratio);
    }
  }
  let plotNote = "";
  if (flags.plot !== false) {
    writeFileSync(flags.plot, await renderPlotSvg(result));
    plotNote = `plot: ${flags.plot}`;
  }
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const summary = `replayed ${result.jobs} jobs over ${result.agents} agents (${result.gpus} GPUs, ${fleetSource}) for ${result.policies.length} policies in ${seconds}s`;
  if (flags.json) {
    process.stderr.write(`${summary}${plotNote ? `; ${plotNote}` : ""}\n`);
    print(JSON.stringify(contract(result)));
    return;
  }
  print(renderReplay(result, lp));
  print("");
  print(summary);
  if (plotNote) print(plotNote);
}

/** The scripts' contract: exactly these fields. */
export function contract(result: ReplayResult) {
  return {
    jobs: result.jobs,
    agents: result.agents,
    policies: result.policies.map((p) => ({
      name: p.name,
      baseline: p.baseline,
      placed: p.placed,
      costMicros: p.costMicros,
      meanQueueS: p.meanQueueS,
      p99QueueS: p.p99QueueS,
      utilisation: p.utilisation,
    })),
  };
}

/** The comparison table: one row per policy, then each baseline's cost against the active policy's. */
export function renderReplay(result: ReplayResult, lp: ReadonlyMap<string, number>): string {
  const active = result.policies.find((p) => p.name === "active");
  const rows = result.policies.map((p) => [
    p.name,
    p.placed,
    p.neverStarted,
    formatUsd(Math.round(p.costMicros / 10_000) * 10_000),
    active && p !== active && active.costMicros > 0
      ? `${Math.round((p.costMicros / active.costMicros) * 100) / 100}x`
      : "",
    lp.has(p.name) ? String(lp.get(p.name)) : "-",
    formatDuration(p.meanQueueS),
    formatDuration(p.p50QueueS),
    formatDuration(p.p99QueueS),
    `${Math.round(p.utilisation * 1000) / 10}%`,
    p.overPriceCap + p.overBudget,
    p.preemptions,
    `${Math.round(p.wallMs / 100) / 10}s`,
  ]);
  const unplaceable = result.policies[0]?.unplaceable ?? 0;
  return [
    renderTable(
      [
        "POLICY",
        "PLACED",
        "WAITING",
        "COST",
        "VS ACTIVE",
        "COST/LP",
        "MEAN WAIT",
        "P50 WAIT",
        "P99 WAIT",
        "GPU UTIL",
        "OVER CAP/BUDGET",
        "PREEMPTED",
        "RUN TIME",
      ],
      rows,
      { rightAlign: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] },
    ),
    unplaceable > 0 ? `\n${unplaceable} job(s) fit nowhere on this fleet (not placed by any policy)` : "",
  ].join("");
}
