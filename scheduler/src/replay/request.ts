/**
 * OperatorService.Replay's request as domain data, its bounds and its validation, shared by the gRPC handler and
 * the console's HTTP route (each names the fields as its wire does). Pure: the engine's profiles come in as data.
 */
import { type FieldViolation, throwIfViolations } from "@capa/domain";
import type { Profile } from "@capa/placement";
import { BASELINE_LABELS, BASELINES, type PolicySpec, TRACE_FORMATS } from "@capa/replay";

/** Bounds on what one replay may ask: the replay runs on the scheduler's CPU, beside its real work. */
export const REPLAY_LIMITS = {
  traceBytes: 2 * 1024 * 1024,
  jobs: 20_000,
  fleetBytes: 1024 * 1024,
  agents: 2_000,
  profiles: 8,
  defaultAgents: 100,
} as const;

export interface ReplayRequest {
  traceCsv: string;
  /** "" = capa's trace CSV. */
  traceFormat: string;
  /** "" = a generated fleet of `agents` agents. */
  fleetCsv: string;
  /** 0 = REPLAY_LIMITS.defaultAgents. */
  agents: number;
  /** "" = the scheduler's active profile. */
  activeProfile: string;
  profiles: string[];
  /** Baseline labels; empty = all, ["none"] = none. */
  baselines: string[];
  seed: number;
  /** 0 = every job. */
  limit: number;
  plotSvg: boolean;
}

/** How a wire names each field (snake_case for gRPC, camelCase for the JSON route). */
export type ReplayFieldNames = Record<keyof ReplayRequest, string>;

export const GRPC_REPLAY_FIELDS: ReplayFieldNames = {
  traceCsv: "trace_csv",
  traceFormat: "trace_format",
  fleetCsv: "fleet_csv",
  agents: "agents",
  activeProfile: "active_profile",
  profiles: "profiles",
  baselines: "baselines",
  seed: "seed",
  limit: "limit",
  plotSvg: "plot_svg",
};

export const JSON_REPLAY_FIELDS = Object.fromEntries(
  Object.keys(GRPC_REPLAY_FIELDS).map((k) => [k, k]),
) as ReplayFieldNames;

/** What the worker runs: validated inputs, profiles resolved to documents. */
export interface ReplayJobInput {
  traceCsv: string;
  traceFormat: "capa" | (typeof TRACE_FORMATS)[number];
  fleetCsv?: string;
  agents: number;
  seed: number;
  limit?: number;
  policies: PolicySpec[];
  plotSvg: boolean;
}

const countLines = (text: string) => {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n + (text.length > 0 && !text.endsWith("\n") ? 1 : 0);
};

/**
 * Validates the request and resolves its profiles among the engine's (`known`, the active one named `active`).
 * Throws ValidationError naming each field at fault. Row-level trace and fleet errors are found by the replay
 * itself (line and column), not here.
 */
export function replayJobInput(
  req: ReplayRequest,
  known: readonly Profile[],
  active: Profile,
  f: ReplayFieldNames,
): ReplayJobInput {
  const v: FieldViolation[] = [];
  const bytes = (s: string) => Buffer.byteLength(s, "utf8");
  if (req.traceCsv.trim() === "") v.push({ field: f.traceCsv, message: "must not be empty (a trace CSV)" });
  else if (bytes(req.traceCsv) > REPLAY_LIMITS.traceBytes)
    v.push({ field: f.traceCsv, message: `must be at most ${REPLAY_LIMITS.traceBytes} bytes` });
  // Header + one line per job (a public trace may have more lines than jobs; it is cut after conversion).
  else if (countLines(req.traceCsv) - 1 > REPLAY_LIMITS.jobs && req.limit === 0)
    v.push({ field: f.traceCsv, message: `must hold at most ${REPLAY_LIMITS.jobs} jobs (or set ${f.limit})` });
  const formats = ["", "capa", ...TRACE_FORMATS];
  if (!formats.includes(req.traceFormat))
    v.push({ field: f.traceFormat, message: `must be one of capa, ${TRACE_FORMATS.join(", ")}` });
  if (bytes(req.fleetCsv) > REPLAY_LIMITS.fleetBytes)
    v.push({ field: f.fleetCsv, message: `must be at most ${REPLAY_LIMITS.fleetBytes} bytes` });
  else if (req.fleetCsv !== "" && countLines(req.fleetCsv) - 1 > REPLAY_LIMITS.agents)
    v.push({ field: f.fleetCsv, message: `must hold at most ${REPLAY_LIMITS.agents} agents` });
  if (!Number.isSafeInteger(req.agents) || req.agents < 0 || req.agents > REPLAY_LIMITS.agents)
    v.push({
      field: f.agents,
      message: `must be an integer in 0..${REPLAY_LIMITS.agents} (0 = ${REPLAY_LIMITS.defaultAgents})`,
    });
  if (!Number.isSafeInteger(req.limit) || req.limit < 0 || req.limit > REPLAY_LIMITS.jobs)
    v.push({ field: f.limit, message: `must be an integer in 0..${REPLAY_LIMITS.jobs} (0 = every job)` });
  if (!Number.isSafeInteger(req.seed) || req.seed < 0)
    v.push({ field: f.seed, message: "must be a non-negative integer" });
  if (req.profiles.length > REPLAY_LIMITS.profiles)
    v.push({ field: f.profiles, message: `must name at most ${REPLAY_LIMITS.profiles} profiles` });

  const names = known.map((p) => p.name).sort();
  const profile = (name: string, field: string): Profile | undefined => {
    const found = known.find((p) => p.name === name);
    if (!found) v.push({ field, message: `unknown profile ${JSON.stringify(name)} (known: ${names.join(", ")})` });
    return found;
  };
  const policies: PolicySpec[] = [];
  const activeProfile = req.activeProfile === "" ? active : profile(req.activeProfile, f.activeProfile);
  if (activeProfile) policies.push({ name: "active", profile: activeProfile });
  req.profiles.forEach((name, i) => {
    const p = profile(name, `${f.profiles}[${i}]`);
    if (p) policies.push({ name: p.name, profile: p });
  });
  const none = req.baselines.length === 1 && req.baselines[0] === "none";
  const labels = req.baselines.length === 0 ? BASELINES.map((b) => BASELINE_LABELS[b]) : none ? [] : req.baselines;
  labels.forEach((label, i) => {
    const b = BASELINES.find((x) => BASELINE_LABELS[x] === label);
    if (b) policies.push({ name: label, baseline: b });
    else
      v.push({
        field: `${f.baselines}[${i}]`,
        message: `unknown baseline ${JSON.stringify(label)} (known: ${BASELINES.map((x) => BASELINE_LABELS[x]).join(", ")}, or none alone)`,
      });
  });
  throwIfViolations(v);
  return {
    traceCsv: req.traceCsv,
    traceFormat: req.traceFormat === "" ? "capa" : (req.traceFormat as ReplayJobInput["traceFormat"]),
    ...(req.fleetCsv !== "" ? { fleetCsv: req.fleetCsv } : {}),
    agents: req.agents || REPLAY_LIMITS.defaultAgents,
    seed: req.seed,
    ...(req.limit > 0 ? { limit: req.limit } : {}),
    policies,
    plotSvg: req.plotSvg,
  };
}
