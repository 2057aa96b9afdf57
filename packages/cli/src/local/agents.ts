/**
 * Starts `capa up`'s simulated agents in this process, each connected to the NATS URLs of its region, and their
 * one metrics endpoint (every series labelled with its agent).
 */
import { mkdirSync } from "node:fs";
import { type AgentHandle, AgentMetrics, startAgent } from "@capa/agent";
import type { Logger } from "pino";
import type { LocalAgent } from "./fleet.js";

const ADVERT_INTERVAL_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 1_000;

export async function startLocalAgents(
  agents: readonly LocalAgent[],
  natsFor: (region: string) => string | string[],
  /** The agent's enrolled nkey seed (see auth.ts). */
  seedFor: (agentId: string) => string,
  {
    logger,
    say,
    metricsHost,
    agentMetricsPort,
  }: { logger: Logger; say: (line: string) => void; metricsHost: string; agentMetricsPort: number },
  /** Each started agent's stop, pushed as soon as it runs (so a later failure still stops it). */
  stops: (() => Promise<void>)[],
): Promise<{ handles: AgentHandle[]; metricsAddress: string }> {
  const handles: AgentHandle[] = [];
  const metrics = new AgentMetrics();
  const server = await metrics.serve(metricsHost, agentMetricsPort);
  stops.push(() => server.close());
  for (const agent of agents) {
    mkdirSync(agent.workDir, { recursive: true });
    const handle = await startAgent({
      nats: natsFor(agent.region),
      natsAuth: { nkeySeed: seedFor(agent.agentId) },
      agentId: agent.agentId,
      region: agent.region,
      zone: agent.zone,
      labels: { "capa.io/stack": "capa-up" },
      provider: agent.provider,
      fabricDomain: `${agent.agentId}-nvlink`,
      prices: agent.prices,
      simulateGpus: agent.gpus,
      workDir: agent.workDir,
      advertIntervalMs: ADVERT_INTERVAL_MS,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      logger: logger.child({ component: "agent", agentId: agent.agentId }),
      metrics,
    });
    stops.push(() => handle.stop());
    handles.push(handle);
    say(`agent ${agent.agentId} (${agent.region}, ${agent.gpus}, ${agent.provider} prices)`);
  }
  say(`agent metrics http://${server.address}/metrics`);
  return { handles, metricsAddress: server.address };
}
