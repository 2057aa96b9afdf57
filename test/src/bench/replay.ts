/**
 * The replay benchmark: 20,000 jobs over 1,000 agents through `replay()` (@capa/replay), the active profile
 * ("cheapest") and the four baselines, each on its own copy of the fleet, in this process. Jobs are the cost
 * benchmark's arrivals (trace pods and gangs, the stated constraint mix, Poisson at an offered load), but here
 * a job that does not fit waits in the queue instead of being turned away, so the figures are cost, queueing
 * delay and utilisation for the same placed work. Prints the wall time of the whole replay and per policy.
 */
import { BUILTIN_PROFILES, mulberry32 } from "@capa/placement";
import { BASELINE_LABELS, BASELINES, type PolicySpec, type ReplayJob, type ReplayResult, replay } from "@capa/replay";
import { arrivals } from "./cost.js";
import type { DataSet } from "./data.js";
import { makeFleet, NOW } from "./fleet.js";
import type { Workload } from "./workload.js";

export interface ReplayBench {
  jobs: number;
  agents: number;
  load: number;
  seconds: number;
  /** CPU seconds of this process during the replay (user + system): the figure for an idle machine. */
  cpuSeconds: number;
  result: ReplayResult;
}

export function runReplayBench(data: DataSet, jobs: number, agents: number, load: number, seed: number): ReplayBench {
  const rng = mulberry32(seed);
  const fleet = makeFleet(agents, data, rng);
  const w: Workload = {
    regions: [...new Set(fleet.map((a) => a.region))].sort(),
    models: [...new Set(fleet.flatMap((a) => a.gpus.map((g) => g.model)))].sort(),
    rng,
  };
  const trace: ReplayJob[] = arrivals(w, data, fleet, jobs, load).map((a) => ({
    id: a.req.jobId,
    submitS: a.at,
    durationS: a.req.spec.expectedDurationSeconds,
    spec: a.req.spec,
  }));
  const cheapest = BUILTIN_PROFILES.find((p) => p.name === "cheapest")!;
  const policies: PolicySpec[] = [
    { name: "active", profile: cheapest },
    ...BASELINES.map((b) => ({ name: BASELINE_LABELS[b], baseline: b })),
  ];
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const result = replay(trace, fleet, policies, { seed, startMs: NOW });
  const seconds = Math.round(Number(process.hrtime.bigint() - started) / 1e8) / 10;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = Math.round((used.user + used.system) / 1e5) / 10;
  return { jobs, agents, load, seconds, cpuSeconds, result };
}
