/**
 * `capa up`: a whole capa on one machine. A real nats-server with JetStream under `<stateDir>/nats`, one
 * scheduler and simulated agents in several regions, all in this process except nats-server, which is a
 * child. `stop()` undoes everything it started, in reverse order.
 *
 * NATS runs with capa's generated authorization (see auth.ts).
 */
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { startScheduler } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer } from "@capa/testkit";
import type { Logger } from "pino";
import { startLocalAgents } from "./agents.js";
import { prepareLocalAuth } from "./auth.js";
import { ensureLocalCredentials, type LocalCredentials } from "./credentials.js";
import type { LocalAgent } from "./fleet.js";
import { planPricedFleet, StopList } from "./lifecycle.js";

export interface LocalStackOptions {
  stateDir: string;
  /** 0 = a free port. */
  natsPort: number;
  grpcHost: string;
  /** 0 = a free port. */
  grpcPort: number;
  /** HTTP edge port (console, webhooks); 0 = a free port. */
  httpPort: number;
  /** Scheduler metrics port (the agents' endpoint takes the next one); 0 = free ports. */
  metricsPort: number;
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
  /** The scheduler's HTTP edge, "http://host:port". */
  httpUrl: string;
  /** Prometheus endpoints: the scheduler's and the in-process agents' (one for all of them). */
  metricsUrls: { scheduler: string; agents: string };
  stateDir: string;
  pricesSource: string;
  agents: LocalAgent[];
  /** Credentials files for the admin, tenant `default` and a provider (mode 0600). */
  credentials: LocalCredentials;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stateDir = resolve(options.stateDir);
  const natsStore = join(stateDir, "nats");
  if (options.fresh) rmSync(natsStore, { recursive: true, force: true });
  mkdirSync(natsStore, { recursive: true });

  const fleet = planPricedFleet(options, stateDir);
  const stops = new StopList(options.logger);
  const stopAll = stops.stopAll;
  try {
    const auth = prepareLocalAuth(stateDir, fleet.agents);
    const nats = await startNatsServer({
      storeDir: natsStore,
      authorization: auth.authorization,
      ...(options.natsPort > 0 ? { port: options.natsPort } : {}),
    });
    stops.push(() => nats.stop());
    killOnExit(nats);
    options.say(`nats-server ${nats.url} (JetStream store ${natsStore}; nkey users in ${auth.dir})`);

    const scheduler = await startScheduler({
      natsUrl: nats.url,
      natsNkeySeed: auth.schedulerSeed,
      grpcAddress: `${options.grpcHost}:${options.grpcPort}`,
      httpHost: options.grpcHost,
      httpPort: options.httpPort,
      metricsHost: options.grpcHost,
      metricsPort: options.metricsPort,
      // A stable id lets a restarted `capa up` take its own leader lease back at once.
      schedulerId: "capa-up",
      // The receipt signing key lives with the rest of capa up's state, not in ~/.capa.
      dataDir: join(stateDir, "scheduler"),
      logger: options.logger.child({ component: "scheduler" }),
    });
    stops.push(() => scheduler.stop());
    options.say(`scheduler gRPC ${scheduler.grpcAddress}, HTTP ${scheduler.httpUrl}`);
    const credentials = await ensureLocalCredentials({
      stateDir,
      schedulerDataDir: join(stateDir, "scheduler"),
      grpcAddress: scheduler.grpcAddress,
      provider: fleet.agents[0]?.provider || "local",
    });
    options.say(`credentials in ${credentials.dir} (admin, tenant, provider; mode 0600)`);

    const agents = await startLocalAgents(
      fleet.agents,
      () => nats.url,
      auth.agentSeed,
      {
        ...options,
        metricsHost: options.grpcHost,
        agentMetricsPort: options.metricsPort > 0 ? options.metricsPort + 1 : 0,
      },
      stops.list,
    );

    return {
      natsUrl: nats.url,
      natsPid: nats.process.pid,
      natsAuthDir: auth.dir,
      grpcAddress: scheduler.grpcAddress,
      httpUrl: scheduler.httpUrl ?? "",
      metricsUrls: {
        scheduler: `http://${scheduler.metricsAddress}/metrics`,
        agents: `http://${agents.metricsAddress}/metrics`,
      },
      stateDir,
      pricesSource: fleet.pricesSource,
      agents: fleet.agents,
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
