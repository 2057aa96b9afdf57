/**
 * @capa/replay: what-if replays of workload traces through the real placement engine, in simulated time.
 * No NATS, no processes: trace + fleet + policies → per-policy results, a comparison and a plot.
 */
export {
  BASELINE_LABELS,
  BASELINES,
  type BaselineName,
  type BaselinePlacement,
  BaselinePlacer,
  COST_BLIND_BASELINES,
  feasibleSlots,
  MAX_ADVERT_AGE_MS,
  type Slot,
} from "./baselines.js";
export { type RunBound, runsLpBound } from "./bound.js";
export {
  type Conversion,
  type ConvertOptions,
  convertTrace,
  formatTrace,
  TRACE_FORMATS,
  type TraceFormat,
} from "./convert.js";
export { defaultDataDir, defaultFleet, type FleetData, INVENTORY_FILE, loadFleetData } from "./data.js";
export { FleetError, InputError, ReplayConfigError, TraceError } from "./errors.js";
export {
  BUILTIN_GPU_COUNT_MIX,
  FLEET_COLUMNS,
  generateFleet,
  gpuCountMix,
  type InstanceOffer,
  offersFromCatalog,
  parseFleet,
} from "./fleet.js";
export { loadReplayInputs, REPLAY_START_MS, type ReplayInputs, type ReplaySource } from "./inputs.js";
export { activeIndices, type LpJob, lpBound, maximalInstants, resourceClasses } from "./lp.js";
export { plotSpec, renderPlotSvg } from "./plot.js";
export {
  agentCanHost,
  billedPrice,
  type PolicyResult,
  type PolicySpec,
  type ReplayJob,
  type ReplayOptions,
  type ReplayResult,
  type Run,
  replay,
  replayJobs,
  type TimelinePoint,
} from "./simulate.js";
export { knownModel, parseTrace, specOf, TRACE_COLUMNS, TRACE_OPTIONAL_COLUMNS, type TraceJob } from "./trace.js";
