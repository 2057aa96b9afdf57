/** Which simulated agents `capa up` starts: ids, zones, GPUs, work dirs and catalog prices. Pure. */
import { join } from "node:path";
import type { CatalogEntry } from "@capa/catalog";
import { type GpuPrice, parseGpuSpec } from "@capa/domain";
import { simulatedAgentPricing } from "./prices.js";

export interface LocalAgent {
  agentId: string;
  region: string;
  zone: string;
  /** Simulated GPUs, e.g. "4xH100-80GB,2xA100-80GB". */
  gpus: string;
  provider: string;
  prices: GpuPrice[];
  workDir: string;
}

export interface FleetOptions {
  regions: string[];
  agentsPerRegion: number;
  gpus: string;
  stateDir: string;
}

/** The agents `capa up` starts: ids, zones, GPUs and catalog prices. Pure, so it is unit-tested. */
export function planLocalAgents(
  entries: readonly CatalogEntry[],
  options: FleetOptions,
): { agents: LocalAgent[]; unpriced: string[] } {
  const models = parseGpuSpec(options.gpus).map((g) => g.model);
  const agents: LocalAgent[] = [];
  const unpriced = new Set<string>();
  for (const region of options.regions) {
    for (let i = 0; i < options.agentsPerRegion; i++) {
      const agentId = `sim-${region}-${i + 1}`;
      const pricing = simulatedAgentPricing(entries, region, models, i);
      for (const model of pricing.unpriced) unpriced.add(model);
      agents.push({
        agentId,
        region,
        zone: `${region}-${String.fromCharCode(97 + (i % 26))}`,
        gpus: options.gpus,
        provider: pricing.provider,
        prices: pricing.prices,
        workDir: join(options.stateDir, "agents", agentId),
      });
    }
  }
  return { agents, unpriced: [...unpriced] };
}
