/**
 * The scorers. A profile weights them by name; a name not listed here is a profile error. The order is the
 * order of `Placement.scores` keys (cheap, search-bounding scorers first: cost and latency have exact bounds
 * per bucket and price, which is what lets the search stop early).
 */
import type { Scorer } from "../pipeline.js";
import { binpackScorer } from "./binpack.js";
import { costScorer } from "./cost.js";
import { headroomScorer } from "./headroom.js";
import { latencyScorer } from "./latency.js";
import { localityScorer } from "./locality.js";
import { reliabilityScorer } from "./reliability.js";
import { scarcityScorer } from "./scarcity.js";
import { spreadScorer } from "./spread.js";

export const SCORERS: readonly Scorer[] = [
  costScorer,
  latencyScorer,
  headroomScorer,
  scarcityScorer,
  reliabilityScorer,
  binpackScorer,
  spreadScorer,
  localityScorer,
];

export const SCORER_NAMES: readonly string[] = SCORERS.map((s) => s.name);
