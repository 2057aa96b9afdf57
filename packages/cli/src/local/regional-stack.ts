/**
 * `capa up --regions N`: a local multi-region capa. A real NATS supercluster (N regions × 3 nats-servers on
 * loopback, routes within a region, gateways between regions, JetStream R3 in the home region; configs and
 * stores under `<stateDir>/supercluster/<server>/`), 2 scheduler replicas on the home cluster (one holds the
 * leader lease, the other serves reads and takes over when the leader goes), and simulated agents connected to
 * their own region's servers. `<stateDir>/supercluster/cluster.json` describes it for `capa cluster`. Every
 * server embeds capa's generated authorization (per-agent nkey users, see auth.ts), as the small stack does.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { type SuperclusterHandle, startSupercluster } from "@capa/testkit";
import type { Logger } from "pino";
import { startLocalAgents } from "./agents.js";
import { prepareLocalAuth } from "./auth.js";
import { CLUSTER_FILE, type ClusterFile } from "./cluster-file.js";
import { ensureLocalCredentials, type LocalCredentials } from "./credentials.js";
import type { LocalAgent } from "./fleet.js";
import { planPricedFleet, StopList } from "./lifecycle.js";

/** Region names `--regions N` takes, in order (all known to the price catalogs). */
export const SUPERCLUSTER_REGIONS = ["eu-west", "us-east", "ap-northeast", "us-west", "eu-central"] as const;

export interface RegionalStackOptions {
  stateDir: string;
  regions: string[];
  serversPerRegion: number;
  /** First of the NATS ports (four per server); 0 = free ports. */
  natsBasePort: number;
  grpcHost: string;
  /** First scheduler's gRPC port, the others follow; 0 = free ports. */
  grpcPort: number;
  /** First scheduler's HTTP edge port, the others follow; 0 = free ports. */
  httpPort: number;
  /** First scheduler's metrics port, the others follow, then the agents' endpoint; 0 = free ports. */
  metricsPort: number;
  schedulers: number;
  /** JetStream replicas; default from the home cluster's size (3 for 3 servers). */
  jsReplicas?: number;
  agentsPerRegion: number;
  gpus: string;
  pricesDir?: string;
  fresh: boolean;
  logger: Logger;
  say: (line: string) => void;
}

export interface RegionalStack {
  home: string;
  natsUrls: Record<string, string[]>;
  grpcAddresses: string[];
  /** Each scheduler replica's HTTP edge, "http://host:port". */
  httpUrls: string[];
  /** Prometheus endpoints: each scheduler replica's, and the in-process agents' (one for all of them). */
  metricsUrls: { schedulers: string[]; agents: string };
  schedulers: SchedulerHandle[];
  supercluster: SuperclusterHandle;
  stateDir: string;
  clusterFile: string;
  pricesSource: string;
  agents: LocalAgent[];
  /** gRPC API keys (admin, tenant, provider) in the CLI's credentials-file format. */
  credentials: LocalCredentials;
  stop(): Promise<void>;
}

export async function startRegionalStack(options: RegionalStackOptions): Promise<RegionalStack> {
  const stateDir = resolve(options.stateDir);
  const dir = join(stateDir, "supercluster");
  if (options.fresh) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const fleet = planPricedFleet(options, stateDir);
  const stops = new StopList(options.logger);
  const stopAll = stops.stopAll;
  try {
    const auth = prepareLocalAuth(stateDir, fleet.agents);
    const sc = await startSupercluster({
      regions: options.regions,
      serversPerRegion: options.serversPerRegion,
      dir,
      ...(options.natsBasePort > 0 ? { basePort: options.natsBasePort } : {}),
      render: { auth: auth.authorization },
    });
    stops.push(() => sc.stop());
    process.once("exit", () => {
      for (const s of sc.servers) if (s.running()) s.process?.kill("SIGKILL");
    });
    options.say(
      `NATS supercluster: ${options.regions.length} region(s) × ${options.serversPerRegion} servers, ` +
        `gateways, JetStream in ${sc.topology.home} (configs under ${dir}; nkey users in ${auth.dir})`,
    );

    const schedulers: SchedulerHandle[] = [];
    for (let i = 0; i < options.schedulers; i++) {
      const scheduler = await startScheduler({
        natsUrl: sc.homeUrls.join(","),
        natsNkeySeed: auth.schedulerSeed,
        grpcAddress: `${options.grpcHost}:${options.grpcPort > 0 ? options.grpcPort + i : 0}`,
        httpHost: options.grpcHost,
        httpPort: options.httpPort > 0 ? options.httpPort + i : 0,
        metricsHost: options.grpcHost,
        metricsPort: options.metricsPort > 0 ? options.metricsPort + i : 0,
        schedulerId: `capa-up-${i + 1}`,
        dataDir: join(stateDir, "scheduler"),
        ...(options.jsReplicas !== undefined ? { replicas: options.jsReplicas } : {}),
        logger: options.logger.child({ component: "scheduler", replica: i + 1 }),
      });
      stops.push(() => scheduler.stop());
      schedulers.push(scheduler);
      options.say(`scheduler capa-up-${i + 1} gRPC ${scheduler.grpcAddress}, HTTP ${scheduler.httpUrl}`);
    }

    const credentials = await ensureLocalCredentials({
      stateDir,
      schedulerDataDir: join(stateDir, "scheduler"),
      grpcAddress: schedulers.map((s) => s.grpcAddress).join(","),
      provider: fleet.agents[0]?.provider || "local",
    });
    options.say(`credentials in ${credentials.dir} (admin, tenant, provider; mode 0600)`);

    const agents = await startLocalAgents(
      fleet.agents,
      (region) => sc.urls(region),
      auth.agentSeed,
      {
        ...options,
        metricsHost: options.grpcHost,
        agentMetricsPort: options.metricsPort > 0 ? options.metricsPort + options.schedulers : 0,
      },
      stops.list,
    );

    const natsUrls = Object.fromEntries(options.regions.map((r) => [r, sc.urls(r)]));
    const clusterFile = join(dir, CLUSTER_FILE);
    const description: ClusterFile = {
      home: sc.topology.home,
      natsUrls,
      schedulers: schedulers.map((s) => s.grpcAddress),
      natsNkeyFile: auth.schedulerSeedFile,
      servers: sc.servers.map((s) => ({
        name: s.node.name,
        region: s.node.region,
        url: s.url,
        monitorUrl: s.monitorUrl,
        pid: s.process?.pid ?? 0,
      })),
    };
    writeFileSync(clusterFile, `${JSON.stringify(description, null, 2)}\n`);
    stops.push(async () => rmSync(clusterFile, { force: true }));
    return {
      home: sc.topology.home,
      natsUrls,
      grpcAddresses: schedulers.map((s) => s.grpcAddress),
      httpUrls: schedulers.map((s) => s.httpUrl ?? ""),
      metricsUrls: {
        schedulers: schedulers.map((s) => `http://${s.metricsAddress}/metrics`),
        agents: `http://${agents.metricsAddress}/metrics`,
      },
      schedulers,
      supercluster: sc,
      stateDir,
      clusterFile,
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
