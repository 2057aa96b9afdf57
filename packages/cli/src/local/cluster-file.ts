/** What `capa up --regions` writes for `capa cluster`: where the servers, their monitoring and the schedulers are. */
export const CLUSTER_FILE = "cluster.json";

export interface ClusterFile {
  home: string;
  /** Client URLs per region. */
  natsUrls: Record<string, string[]>;
  /** gRPC addresses of the scheduler replicas. */
  schedulers: string[];
  /** The scheduler's nkey seed file: full access, for the JetStream view of `capa cluster`. */
  natsNkeyFile?: string;
  servers: { name: string; region: string; url: string; monitorUrl: string; pid: number }[];
}
