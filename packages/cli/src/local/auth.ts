/**
 * NATS credentials for both `capa up` stacks, as a deployment would have them: `<stateDir>/nats-auth` holds the
 * scheduler's nkey and one enrolled user per simulated agent (kept across restarts), so every agent is confined
 * to its own subjects and assignment key and anonymous clients are refused.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openAuthDir } from "@capa/nats-auth";
import type { LocalAgent } from "./fleet.js";

export interface LocalAuth {
  dir: string;
  /** The `authorization { ... }` block every nats-server embeds. */
  authorization: string;
  schedulerSeed: string;
  /** The file holding it (what `capa cluster` connects with). */
  schedulerSeedFile: string;
  agentSeed(agentId: string): string;
}

export function prepareLocalAuth(stateDir: string, agents: readonly LocalAgent[]): LocalAuth {
  const auth = openAuthDir(join(stateDir, "nats-auth"));
  for (const agent of agents) {
    const known = auth.agents().some((a) => a.agentId === agent.agentId && a.region === agent.region);
    if (!known) auth.enroll({ agentId: agent.agentId, region: agent.region });
  }
  return {
    dir: auth.dir,
    authorization: readFileSync(auth.authConfFile, "utf8"),
    schedulerSeed: auth.schedulerSeed(),
    schedulerSeedFile: auth.schedulerSeedFile,
    agentSeed: (agentId) => readFileSync(auth.agentSeedFile(agentId), "utf8").trim(),
  };
}
