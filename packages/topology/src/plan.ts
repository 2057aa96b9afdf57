/**
 * The shape of a NATS supercluster for capa: one NATS cluster per region (its name is the region), joined by
 * gateways; the home region holds capa's JetStream state. Pure data, so every launcher (the testkit, `capa up
 * --regions`, the compose file) derives its configs from one description.
 */

/** How one server is reached (`host`) and what it binds (`listenHost`), with its four ports. */
export interface ServerEndpoint {
  host: string;
  listenHost: string;
  clientPort: number;
  clusterPort: number;
  gatewayPort: number;
  /** HTTP monitoring (/varz, /routez, /gatewayz, /jsz, /healthz). */
  monitorPort: number;
}

export interface ServerNode extends ServerEndpoint {
  /** Unique in the supercluster: `<region>-<n>` (n from 1). JetStream requires unique server names. */
  name: string;
  region: string;
  /** JetStream file store of this server. */
  storeDir: string;
}

export interface RegionCluster {
  /** The region, also the NATS cluster and gateway name. */
  name: string;
  servers: ServerNode[];
}

export interface Topology {
  /** The region whose cluster holds capa's KV buckets and streams and where schedulers connect. */
  home: string;
  regions: RegionCluster[];
}

export interface PlanOptions {
  /** Regions, the first is home unless `home` names another. */
  regions: readonly string[];
  serversPerRegion: number;
  home?: string;
  /** Endpoint of the `index`-th server (0-based) of `region`. */
  endpoint: (region: string, index: number) => ServerEndpoint;
  /** JetStream store dir of a server, by its name. */
  storeDir: (serverName: string) => string;
}

export class TopologyError extends Error {
  override name = "TopologyError";
}

// A region becomes a cluster name, a server name and a directory name: keep it to what all three accept.
const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function planTopology(options: PlanOptions): Topology {
  const { regions, serversPerRegion } = options;
  if (regions.length === 0) throw new TopologyError("at least one region is required");
  if (!Number.isInteger(serversPerRegion) || serversPerRegion < 1 || serversPerRegion > 9)
    throw new TopologyError(`serversPerRegion must be an integer in 1..9, got ${serversPerRegion}`);
  const seen = new Set<string>();
  for (const region of regions) {
    if (!REGION_NAME.test(region))
      throw new TopologyError(`region ${JSON.stringify(region)} must be lower-case letters, digits and '-'`);
    if (seen.has(region)) throw new TopologyError(`region ${region} is listed twice`);
    seen.add(region);
  }
  const home = options.home ?? regions[0]!;
  if (!seen.has(home)) throw new TopologyError(`home region ${home} is not one of ${regions.join(", ")}`);
  const ports = new Set<string>();
  const clusters = regions.map((region) => ({
    name: region,
    servers: Array.from({ length: serversPerRegion }, (_, i) => {
      const endpoint = options.endpoint(region, i);
      for (const port of [endpoint.clientPort, endpoint.clusterPort, endpoint.gatewayPort, endpoint.monitorPort]) {
        const key = `${endpoint.host}:${port}`;
        if (ports.has(key)) throw new TopologyError(`${key} is used twice`);
        ports.add(key);
      }
      const name = `${region}-${i + 1}`;
      return { ...endpoint, name, region, storeDir: options.storeDir(name) };
    }),
  }));
  return { home, regions: clusters };
}

/** Consecutive loopback ports from `basePort`: four per server (client, cluster, gateway, monitor). */
export function loopbackEndpoints(basePort: number, regions: readonly string[], serversPerRegion: number) {
  return (region: string, index: number): ServerEndpoint => {
    const slot = regions.indexOf(region) * serversPerRegion + index;
    const first = basePort + slot * 4;
    return {
      host: "127.0.0.1",
      listenHost: "127.0.0.1",
      clientPort: first,
      clusterPort: first + 1,
      gatewayPort: first + 2,
      monitorPort: first + 3,
    };
  };
}

export function region(topology: Topology, name: string): RegionCluster {
  const found = topology.regions.find((r) => r.name === name);
  if (!found) throw new TopologyError(`no region ${name} in the topology`);
  return found;
}

export function allServers(topology: Topology): ServerNode[] {
  return topology.regions.flatMap((r) => r.servers);
}

export function clientUrl(server: ServerEndpoint): string {
  return `nats://${server.host}:${server.clientPort}`;
}

/** The client URL list of a region: what its agents (and, for home, the schedulers) connect to. */
export function regionUrls(topology: Topology, name: string): string[] {
  return region(topology, name).servers.map(clientUrl);
}

export function monitorUrl(server: ServerEndpoint): string {
  return `http://${server.host}:${server.monitorPort}`;
}
