/**
 * Where capa's JetStream state lives and how many copies it has: in the cluster the scheduler is connected to
 * (the home region of a supercluster, pinned with `placement.cluster` so a gateway peer never takes a replica),
 * with `--js-replicas` copies (default 3 when that cluster has at least 3 servers, else 1).
 */

import { clusterSizeFromInfo, resolveJsReplicas } from "@capa/topology";
import type { NatsConnection } from "@nats-io/transport-node";

export interface StoreLayout {
  replicas: number;
  /** The home cluster's name; undefined on a lone server (no placement). */
  placementCluster: string | undefined;
  /** Servers in the home cluster, as the connected server reports them. */
  clusterSize: number;
}

export function storeLayout(nc: NatsConnection, requestedReplicas: number | undefined): StoreLayout {
  const info = nc.info;
  const clusterSize = clusterSizeFromInfo(info);
  return {
    replicas: resolveJsReplicas(requestedReplicas, clusterSize),
    placementCluster: info?.cluster || undefined,
    clusterSize,
  };
}
