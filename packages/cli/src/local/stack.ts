/**
 * `capa up`: a whole capa on one machine. A real nats-server with JetStream under `<stateDir>/nats`, one
 * scheduler and simulated agents in several regions, all in this process except nats-server, which is a
 * child. `stop()` undoes everything it started, in reverse order.
 *
 * NATS runs with capa's generated authorization, as a deployment would: `<stateDir>/nats-auth` holds the
 * scheduler's nkey and one enrolled user per simulated agent (kept across restarts), so every agent is confined to
 * its own subjects and assignment key and anonymous clients are refused.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { startAgent } from "@capa/agent";
import { loadCatalog } from "@capa/catalog";
import { openAuthDir } from "@capa/nats-auth";
import { startScheduler } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import type { Logger } from "pino";
import { ensureLocalCredentials, type LocalCredentials } from "./credentials.js";
import { type LocalAgent, planLocalAgents } from "./fleet.js";

export interface LocalStackOptions {
  stateDir: string;
  /** 0 = a free port. */
  natsPort: number;
  grpcHost: string;
  /** 0 = a free port. */
  grpcPort: number;
  regions: string[];
  agentsPerRegion: number;
  /** Simulated GPUs of each agent, e.g. "4xH100-80GB,2xA100-80GB". */
  gpus: string;
  /** Price catalog directory; default: @capa/catalog's (CAPA_PRICES_DIR or ../shared/data/prices). */
  pricesDir?: string;
  /** Remove the previous JetStream store (jobs, agents) first. */
  fresh: boolean;
  logger: Logger;
  /** Progress lines for people (stderr in `capa up`). */
  say: (line: string) => void;
}

export interface LocalStack {
  natsUrl: string;
  natsPid: number | undefined;
  /** Scheduler and agent nkey seeds, and the server's auth.conf. */
  natsAuthDir: string;
  grpcAddress: string;
  stateDir: string;
  pricesSource: string;
  agents: LocalAgent[];
  /** Credentials files for the admin, tenant `default` and a provider (mode 0600). */
  credentials: LocalCredentials;
  stop(): Promise<void>;
}

const ADVERT_INTERVAL_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 1_000;

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stateDir = resolve(options.stateDir);
  const natsStore = join(stateDir, "nats");
  if (options.fresh) rmSync(natsStore, { recursive: true, force: true });
  mkdirSync(natsStore, { recursive: true });

  const catalog = loadCatalog(options.pricesDir);
  const plan = planLocalAgents(catalog.entries, { ...options, stateDir });
  options.say(
    `prices: ${catalog.source === "built-in" ? "built-in defaults (no catalog directory found)" : catalog.source}`,
  );
  if (plan.unpriced.length > 0) options.say(`warning: no catalog prices for ${plan.unpriced.join(", ")}`);

  // Everything started so far, stopped in reverse order on failure or on stop().
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse().splice(0)) {
      try {
        await stop();
      } catch (err) {
        options.logger.warn({ err }, "stopping a capa up component failed");
      }
    }
  };
  try {
    const auth = openAuthDir(join(stateDir, "nats-auth"));
    for (const agent of plan.agents) {
      const known = auth.agents().some((a) => a.agentId === agent.agentId && a.region === agent.region);
      if (!known) auth.enroll({ agentId: agent.agentId, region: agent.region });
    }
    const agentSeed = (agentId: string) => readFileSync(auth.agentSeedFile(agentId), "utf8").trim();
    const nats = await startNatsServer({
      storeDir: natsStore,
      authorization: readFileSync(auth.authConfFile, "utf8"),
      ...(options.natsPort > 0 ? { port: options.natsPort } : {}),
    });
    stops.push(() => nats.stop());
    killOnExit(nats);
    options.say(`nats-server ${nats.url} (JetStream store ${natsStore}; nkey users in ${auth.dir})`);

    const scheduler = await startScheduler({
      natsUrl: nats.url,
      natsNkeySeed: auth.schedulerSeed(),
      grpcAddress: `${options.grpcHost}:${options.grpcPort}`,
      // A stable id lets a restarted `capa up` take its own leader lease back at once.
      schedulerId: "capa-up",
      // The receipt signing key lives with the rest of capa up's state, not in ~/.capa.
      dataDir: join(stateDir, "scheduler"),
      logger: options.logger.child({ component: "scheduler" }),
    });
    stops.push(() => scheduler.stop());
    options.say(`scheduler gRPC ${scheduler.grpcAddress}`);
    const credentials = await ensureLocalCredentials({
      stateDir,
      schedulerDataDir: join(stateDir, "scheduler"),
      grpcAddress: scheduler.grpcAddress,
      provider: plan.agents[0]?.provider || "local",
    });
    options.say(`credentials in ${credentials.dir} (admin, tenant, provider; mode 0600)`);

    for (const agent of plan.agents) {
      mkdirSync(agent.workDir, { recursive: true });
      const handle = await startAgent({
        nats: nats.url,
        natsAuth: { nkeySeed: agentSeed(agent.agentId) },
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
        logger: options.logger.child({ component: "agent", agentId: agent.agentId }),
      });
      stops.push(() => handle.stop());
      options.say(`agent ${agent.agentId} (${agent.region}, ${agent.gpus}, ${agent.provider} prices)`);
    }

    return {
      natsUrl: nats.url,
      natsPid: nats.process.pid,
      natsAuthDir: auth.dir,
      grpcAddress: scheduler.grpcAddress,
      stateDir,
      pricesSource: catalog.source,
      agents: plan.agents,
      credentials,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** If this process dies without stop() (an uncaught error), its nats-server must not outlive it. */
function killOnExit(nats: NatsServerHandle): void {
  process.once("exit", () => {
    if (nats.process.exitCode === null && nats.process.signalCode === null) nats.process.kill("SIGKILL");
  });
}
