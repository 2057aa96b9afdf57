/**
 * How many JetStream replicas capa's buckets and streams get. R3 survives one server of the home cluster;
 * more than the cluster has cannot be placed; an even count buys nothing over the odd one below it.
 */
export class ReplicasError extends Error {
  override name = "ReplicasError";
}

/** The default for `--js-replicas`: 3 when the home cluster has at least 3 servers, else 1. */
export function defaultJsReplicas(clusterSize: number): number {
  return clusterSize >= 3 ? 3 : 1;
}

/** The replica count to use: the requested one, checked against the cluster, or the default. */
export function resolveJsReplicas(requested: number | undefined, clusterSize: number): number {
  if (requested === undefined) return defaultJsReplicas(clusterSize);
  if (!Number.isInteger(requested) || requested < 1 || requested > 5)
    throw new ReplicasError(`--js-replicas must be an integer in 1..5 (JetStream's limit), got ${requested}`);
  if (requested > clusterSize)
    throw new ReplicasError(
      `--js-replicas ${requested} needs at least ${requested} JetStream servers in the home cluster; it has ${clusterSize}`,
    );
  return requested;
}

/**
 * The size of the cluster a client is connected to, from the server's INFO: `connect_urls` lists the client
 * URLs of every server routed into the same cluster (gateways' clusters are not in it); a lone server sends none.
 */
export function clusterSizeFromInfo(info: { cluster?: string; connect_urls?: string[] } | undefined): number {
  if (!info?.cluster) return 1;
  return Math.max(1, new Set(info.connect_urls ?? []).size);
}
