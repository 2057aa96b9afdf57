/**
 * The two shipped deployments' NATS topologies, as data: `docker/compose.yaml` and `docker/k8s/` run 2 regions ×
 * 3 nats-servers joined by gateways, JetStream (R3) in the home region only. Their nats-server configs are
 * rendered from these by `npm run render:deploy` and checked in; a test renders them again and compares, so the
 * files cannot drift from the renderer the testkit and `capa up --regions` use.
 */
import { planTopology, type ServerEndpoint, type Topology } from "./plan.js";

export const DEPLOY_REGIONS = ["eu-west", "us-east"] as const;
export const DEPLOY_SERVERS_PER_REGION = 3;
/** Where the JetStream store lives in the NATS containers (a named volume in compose, a PVC on Kubernetes). */
export const DEPLOY_STORE_DIR = "/data/jetstream";
/** The generated authorization (`capa agent enroll`'s auth.conf), mounted beside the config. */
export const DEPLOY_AUTH = 'include "auth/auth.conf"';

const PORTS = { clientPort: 4222, clusterPort: 6222, gatewayPort: 7222, monitorPort: 8222 } as const;

const endpoint = (host: string): ServerEndpoint => ({ host, listenHost: "0.0.0.0", ...PORTS });

/** Compose: one service per server, named `nats-<server>` (e.g. `nats-eu-west-1`), all on the default network. */
export function composeTopology(): Topology {
  return planTopology({
    regions: DEPLOY_REGIONS,
    serversPerRegion: DEPLOY_SERVERS_PER_REGION,
    endpoint: (region, i) => endpoint(composeNatsService(`${region}-${i + 1}`)),
    storeDir: () => DEPLOY_STORE_DIR,
  });
}

export function composeNatsService(serverName: string): string {
  return `nats-${serverName}`;
}

/**
 * Kubernetes: one StatefulSet per region, `nats-<region>` with a headless Service of the same name, so the
 * server with index i (0-based, server `<region>-<i+1>`) is the pod `nats-<region>-<i>`, reached at
 * `nats-<region>-<i>.nats-<region>.<namespace>.svc.cluster.local`.
 */
export function kubernetesTopology(namespace = "capa"): Topology {
  return planTopology({
    regions: DEPLOY_REGIONS,
    serversPerRegion: DEPLOY_SERVERS_PER_REGION,
    endpoint: (region, i) => endpoint(`${kubernetesNatsPod(region, i)}.nats-${region}.${namespace}.svc.cluster.local`),
    storeDir: () => DEPLOY_STORE_DIR,
  });
}

export function kubernetesNatsPod(region: string, index: number): string {
  return `nats-${region}-${index}`;
}
