/**
 * The replay worker thread: one replay per thread, inputs in `workerData`, one message back. The simulation is
 * CPU-bound for seconds to a minute, so it never runs on the scheduler's event loop (heartbeats, leases, gRPC).
 * Input errors come back as data (which input, the message with its line and column), everything else as an
 * error message the runner logs.
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  FleetError,
  InputError,
  loadReplayInputs,
  plotSpec,
  ReplayConfigError,
  renderPlotSvg,
  replay,
  replayJobs,
} from "@capa/replay";
import type { ReplayJobInput } from "./request.js";
import { REPLAY_LIMITS } from "./request.js";
import type { ReplayWorkerAnswer } from "./runner.js";

async function run(input: ReplayJobInput): Promise<ReplayWorkerAnswer> {
  const started = performance.now();
  try {
    const { trace, agents, fleetSource } = loadReplayInputs({
      traceText: input.traceCsv,
      traceFormat: input.traceFormat,
      traceName: "trace",
      ...(input.fleetCsv !== undefined ? { fleetText: input.fleetCsv, fleetName: "fleet" } : {}),
      agents: input.agents,
      seed: input.seed,
      ...(input.limit !== undefined ? { limit: input.limit } : {}),
    });
    if (trace.length > REPLAY_LIMITS.jobs)
      return { ok: false, input: "trace", message: `holds ${trace.length} jobs, more than ${REPLAY_LIMITS.jobs}` };
    if (agents.length > REPLAY_LIMITS.agents)
      return { ok: false, input: "fleet", message: `holds ${agents.length} agents, more than ${REPLAY_LIMITS.agents}` };
    const result = replay(replayJobs(trace), agents, input.policies, { seed: input.seed });
    const plot = plotSpec(result);
    const svg = input.plotSvg ? await renderPlotSvg(result) : "";
    return {
      ok: true,
      output: {
        jobs: result.jobs,
        agents: result.agents,
        gpus: result.gpus,
        seed: result.seed,
        fleetSource,
        policies: result.policies.map(({ runs: _runs, ...summary }) => summary),
        plot,
        plotSvg: svg,
        wallSeconds: Math.round((performance.now() - started) / 100) / 10,
      },
    };
  } catch (err) {
    if (err instanceof FleetError) return { ok: false, input: "fleet", message: err.message };
    if (err instanceof InputError) return { ok: false, input: "trace", message: err.message };
    if (err instanceof ReplayConfigError) return { ok: false, input: "config", message: err.message };
    return { ok: false, input: "internal", message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
}

void run(workerData as ReplayJobInput).then((answer) => parentPort?.postMessage(answer));
