/** What both `capa up` stacks share: the priced fleet plan and the reverse-order stop list. */
import { loadCatalog } from "@capa/catalog";
import type { Logger } from "pino";
import { type LocalAgent, planLocalAgents } from "./fleet.js";

export interface FleetPlanOptions {
  regions: string[];
  agentsPerRegion: number;
  gpus: string;
  pricesDir?: string;
  say: (line: string) => void;
}

/** Loads the price catalogs and plans the simulated agents, saying where the prices come from. */
export function planPricedFleet(
  options: FleetPlanOptions,
  stateDir: string,
): { agents: LocalAgent[]; pricesSource: string } {
  const catalog = loadCatalog(options.pricesDir);
  const plan = planLocalAgents(catalog.entries, { ...options, stateDir });
  options.say(
    `prices: ${catalog.source === "built-in" ? "built-in defaults (no catalog directory found)" : catalog.source}`,
  );
  if (plan.unpriced.length > 0) options.say(`warning: no catalog prices for ${plan.unpriced.join(", ")}`);
  return { agents: plan.agents, pricesSource: catalog.source };
}

/** Everything started so far, stopped in reverse order on failure or on stop(); a failing stop is logged. */
export class StopList {
  private readonly stops: (() => Promise<void>)[] = [];
  constructor(private readonly logger: Logger) {}
  get list(): (() => Promise<void>)[] {
    return this.stops;
  }
  push(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }
  stopAll = async (): Promise<void> => {
    for (const stop of this.stops.reverse().splice(0)) {
      try {
        await stop();
      } catch (err) {
        this.logger.warn({ err }, "stopping a capa up component failed");
      }
    }
  };
}
