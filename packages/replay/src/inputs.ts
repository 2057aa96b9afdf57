/**
 * A replay's inputs from text: the trace (capa's CSV or a public trace), sorted and cut to `limit`, and the fleet
 * (a fleet CSV, or one generated from the public data). Shared by `capa replay` and the scheduler's
 * OperatorService.Replay, so both read their inputs the same way.
 */
import type { AgentView } from "@capa/placement";
import { convertTrace, type TraceFormat } from "./convert.js";
import { defaultFleet, type FleetData, loadFleetData } from "./data.js";
import { parseFleet } from "./fleet.js";
import { parseTrace, type TraceJob } from "./trace.js";

/** Trace second 0 on the injected clock: a fixed instant, so a replay never depends on when it runs. */
export const REPLAY_START_MS = Date.UTC(2026, 0, 1);

export interface ReplaySource {
  traceText: string;
  traceFormat: "capa" | TraceFormat;
  /** Named in error messages ("t.csv: line 3, column 3 ..."). */
  traceName: string;
  /** A fleet CSV; without it a fleet of `agents` agents is generated from `fleetData`. */
  fleetText?: string;
  fleetName?: string;
  agents: number;
  seed: number;
  /** Keep the first N jobs by submit time. */
  limit?: number;
  /** The injected clock at trace second 0 (default REPLAY_START_MS). */
  startMs?: number;
  /** The public data for a generated fleet (default: `loadFleetData()`), read only when one is generated. */
  fleetData?: () => FleetData;
}

export interface ReplayInputs {
  trace: TraceJob[];
  agents: AgentView[];
  /** Where the fleet came from, in words. */
  fleetSource: string;
}

export function loadReplayInputs(src: ReplaySource): ReplayInputs {
  const parsed =
    src.traceFormat === "capa"
      ? parseTrace(src.traceText, src.traceName)
      : convertTrace(src.traceFormat, src.traceText).jobs;
  const sorted = [...parsed].sort((a, b) => a.submitS - b.submitS);
  const trace = src.limit !== undefined ? sorted.slice(0, src.limit) : sorted;
  const startMs = src.startMs ?? REPLAY_START_MS;
  if (src.fleetText !== undefined) {
    const name = src.fleetName ?? "fleet";
    return { trace, agents: parseFleet(src.fleetText, startMs, name), fleetSource: name };
  }
  const data = (src.fleetData ?? (() => loadFleetData()))();
  return {
    trace,
    agents: defaultFleet(src.agents, src.seed, startMs, data),
    fleetSource: `generated from ${data.source}`,
  };
}
