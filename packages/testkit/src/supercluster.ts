/**
 * Starts a real NATS supercluster on loopback for tests, benches and `capa up --regions`: one cluster per region
 * (`serversPerRegion` servers routed together), gateways between the regions, JetStream in the home region.
 * Configs come from @capa/topology, so what the tests run is what `capa up --regions` and compose run.
 * Every server can be killed (any signal) and started again on the same ports and store dir (fault suites).
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allServers,
  clientUrl,
  monitorUrl,
  planTopology,
  type RenderOptions,
  regionUrls,
  renderServerConfig,
  type ServerNode,
  type Topology,
} from "@capa/topology";
import { freePort, launchNatsServer, terminateProcess } from "./nats-server.js";
import { waitFor } from "./wait.js";

export interface SuperclusterOptions {
  regions: readonly string[];
  /** Default 3. */
  serversPerRegion?: number;
  /** Default: the first region. */
  home?: string;
  /** Config files and JetStream stores go under `<dir>/<server>/`; a temp dir by default (removed on stop). */
  dir?: string;
  /** Fixed ports from this one on (four per server), e.g. for `capa up`; free ports by default. */
  basePort?: number;
  /** Passed to the renderer: auth block, sync interval, JetStream regions... */
  render?: RenderOptions;
  binary?: string;
  startTimeoutMs?: number;
}

export interface ClusterServer {
  node: ServerNode;
  url: string;
  monitorUrl: string;
  configPath: string;
  process: ChildProcess | undefined;
  running(): boolean;
  /** Sends `signal` (SIGKILL by default) and waits for the exit; the store dir stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same config (ports, store). */
  start(): Promise<void>;
}

export interface SuperclusterHandle {
  topology: Topology;
  dir: string;
  servers: ClusterServer[];
  server(name: string): ClusterServer;
  /** Client URLs of a region's servers (what its agents connect to); `homeUrls` for the schedulers. */
  urls(region: string): string[];
  homeUrls: string[];
  /** Resolves once every running home server reports JetStream healthy and a meta leader exists. */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** Resolves once every running server has its routes and its outbound gateways to every other region. */
  waitForMesh(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Free ports are picked before the servers bind them, so another process can take one in between: with free
 * ports a start that fails because a port was taken is tried again on new ports (twice at most).
 */
export async function startSupercluster(options: SuperclusterOptions): Promise<SuperclusterHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      const portTaken = /address already in use/i.test(String((err as Error).message));
      if (!portTaken || options.basePort !== undefined || attempt >= 3) throw err;
    }
  }
}

async function startOnce(options: SuperclusterOptions): Promise<SuperclusterHandle> {
  const serversPerRegion = options.serversPerRegion ?? 3;
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "capa-supercluster-"));
  const ports = new Map<string, number[]>();
  const taken = new Set<number>();
  const endpoint = async (region: string, index: number) => {
    const key = `${region}/${index}`;
    if (options.basePort !== undefined) {
      const first = options.basePort + (options.regions.indexOf(region) * serversPerRegion + index) * 4;
      ports.set(key, [first, first + 1, first + 2, first + 3]);
    } else {
      // The OS may hand the same free port out twice (each probe socket is closed at once): keep them distinct.
      const picked: number[] = [];
      while (picked.length < 4) {
        const port = await freePort();
        if (!taken.has(port)) {
          taken.add(port);
          picked.push(port);
        }
      }
      ports.set(key, picked);
    }
  };
  for (const region of options.regions) for (let i = 0; i < serversPerRegion; i++) await endpoint(region, i);
  const topology = planTopology({
    regions: options.regions,
    serversPerRegion,
    ...(options.home ? { home: options.home } : {}),
    endpoint: (region, index) => {
      const [clientPort, clusterPort, gatewayPort, monitorPort] = ports.get(`${region}/${index}`)!;
      return {
        host: "127.0.0.1",
        listenHost: "127.0.0.1",
        clientPort: clientPort!,
        clusterPort: clusterPort!,
        gatewayPort: gatewayPort!,
        monitorPort: monitorPort!,
      };
    },
    storeDir: (name) => join(dir, name, "js"),
  });
  const binary = options.binary ?? process.env.CAPA_NATS_SERVER ?? "nats-server";
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const servers = allServers(topology).map((node): ClusterServer => {
    mkdirSync(join(dir, node.name), { recursive: true });
    const configPath = join(dir, node.name, "nats.conf");
    writeFileSync(configPath, renderServerConfig(topology, node.name, options.render));
    const server: ClusterServer = {
      node,
      url: clientUrl(node),
      monitorUrl: monitorUrl(node),
      configPath,
      process: undefined,
      running: () => server.process !== undefined && server.process.exitCode === null && !server.process.signalCode,
      async kill(signal = "SIGKILL") {
        const child = server.process;
        if (!child || !server.running()) return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        if (signal === "SIGTERM") await terminateProcess(child);
        else {
          child.kill(signal);
          await exited;
        }
      },
      async start() {
        if (server.running()) return;
        server.process = await launchNatsServer(binary, configPath, node.clientPort, timeoutMs);
      },
    };
    return server;
  });
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill("SIGTERM")));
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };
  // A lone server of a cluster waits for its routes only in the background: start them all at once.
  try {
    await Promise.all(servers.map((s) => s.start()));
  } catch (err) {
    await stop();
    throw err;
  }
  const handle: SuperclusterHandle = {
    topology,
    dir,
    servers,
    server(name) {
      const found = servers.find((s) => s.node.name === name);
      if (!found) throw new Error(`no server ${name}`);
      return found;
    },
    urls: (region) => regionUrls(topology, region),
    homeUrls: regionUrls(topology, topology.home),
    async waitForJetStream(waitMs = 30_000) {
      const home = servers.filter((s) => s.node.region === topology.home && s.running());
      await waitFor(
        async () => {
          for (const s of home) if (!(await jetStreamReady(s.monitorUrl))) return false;
          return true;
        },
        { timeoutMs: waitMs, intervalMs: 200, what: "a JetStream meta leader in the home cluster" },
      );
    },
    async waitForMesh(waitMs = 30_000) {
      await waitFor(
        async () => {
          for (const s of servers.filter((x) => x.running())) {
            const peers = servers.filter((x) => x !== s && x.running());
            if (!(await meshed(s, peers))) return false;
          }
          return true;
        },
        { timeoutMs: waitMs, intervalMs: 200, what: "routes and gateways between every running server" },
      );
    },
    stop,
  };
  try {
    await handle.waitForMesh(timeoutMs);
    await handle.waitForJetStream(timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return handle;
}

/** Routes to every running peer of its region, an outbound gateway to every other region with a running server. */
async function meshed(server: ClusterServer, peers: ClusterServer[]): Promise<boolean> {
  try {
    const routez = (await (await fetch(`${server.monitorUrl}/routez`)).json()) as { num_routes?: number };
    const sameRegion = peers.filter((p) => p.node.region === server.node.region).length;
    if ((routez.num_routes ?? 0) < sameRegion) return false;
    const gatewayz = (await (await fetch(`${server.monitorUrl}/gatewayz`)).json()) as {
      outbound_gateways?: Record<string, unknown>;
    };
    const regions = new Set(peers.filter((p) => p.node.region !== server.node.region).map((p) => p.node.region));
    return [...regions].every((r) => gatewayz.outbound_gateways?.[r] !== undefined);
  } catch {
    return false;
  }
}

/** `/healthz` says ok and `/jsz` names a meta leader (a cluster without one accepts no stream or KV calls). */
async function jetStreamReady(base: string): Promise<boolean> {
  try {
    const health = await fetch(`${base}/healthz`);
    if (!health.ok) return false;
    const jsz = (await (await fetch(`${base}/jsz`)).json()) as { meta_cluster?: { leader?: string } };
    return Boolean(jsz.meta_cluster?.leader);
  } catch {
    return false;
  }
}
