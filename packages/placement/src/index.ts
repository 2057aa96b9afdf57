/**
 * @capa/placement: the pure placement core. Snapshot (ClusterState) + request → plan + explanation.
 * No I/O, no clock, no randomness of its own: the caller passes `nowMs` and `seed`.
 */

export { type BoundJob, transportationBound } from "./bound.js";
export type { ElasticPlan } from "./elastic/place.js";
export {
  DEFAULT_SIZE_WEIGHTS,
  decideSize,
  proposeSizes,
  SIZE_FILTERS,
  SIZE_REASON,
  SIZE_SCORERS,
  type SizeChange,
  type SizeDecision,
  type SizeInput,
  type SizeOption,
  type SizeVerdict,
  type SizeWeights,
} from "./elastic/size.js";
export { type EngineOptions, PlacementEngine } from "./engine.js";
export { OverCommitError, ProfileError, UnknownProfileError } from "./errors.js";
export { FILTERS } from "./filters/registry.js";
export * from "./model.js";
export type { Candidate, Filter, RequestContext, Scorer } from "./pipeline.js";
export { BUILTIN_PROFILES, type Profile, parseProfile, validateProfile } from "./profile.js";
export { REASON, type RejectionReason } from "./reasons.js";
export { mulberry32, seededHash } from "./rng.js";
export { SCORER_NAMES, SCORERS } from "./scorers/registry.js";
export { MaxHeap } from "./search/heap.js";
export { ClusterState, fabricKeyOf } from "./state/cluster-state.js";
export { DEFAULT_TABLES, type NetworkTables, REGION_CONTINENT } from "./tables.js";
