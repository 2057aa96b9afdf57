/**
 * The benchmark's simulated fleets: @capa/replay's generator (real catalog instances, a real fleet's
 * GPUs-per-machine mix, 8-GPU machines in fabric blocks) over the benchmark's data set, at a fixed clock.
 */
import type { AgentView } from "@capa/placement";
import { generateFleet } from "@capa/replay";
import type { DataSet } from "./data.js";

export const NOW = 1_750_000_000_000;

export function makeFleet(size: number, data: DataSet, rng: () => number): AgentView[] {
  return generateFleet(size, data.offers, data.gpuCountMix, rng, NOW);
}
