/** What `capa up --regions` writes for `capa cluster`: where the servers, their monitoring and the schedulers are. */
export const CLUSTER_FILE = "cluster.json";

export interface ClusterFile {
  home: string;
  /** Client URLs per region. */
  natsUrls: Record<string, string[]>;
  /** gRPC addresses of the scheduler replicas. */
  schedulers: string[];
  servers: { name: string; region: string; url: string; monitorUrl: string; pid: number }[];
}
