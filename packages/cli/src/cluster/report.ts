/** What `capa cluster` shows, as plain data (collected by collect.ts, rendered by render.ts). */
export interface ServerReport {
  /** Monitoring base URL the data came from. */
  monitorUrl: string;
  name: string;
  /** NATS cluster (= region) name; "" for a lone server. */
  cluster: string;
  /** "ok", or why the server is not healthy / not reachable. */
  health: string;
  reachable: boolean;
  jetstream: boolean;
  connections: number;
  routes: number;
  /** Outbound gateways by remote cluster name: connected or only configured. */
  gateways: { name: string; connected: boolean }[];
  uptime: string;
}

export interface StreamReport {
  name: string;
  replicas: number;
  cluster: string;
  leader: string;
  /** Every peer (leader first) and whether it is current. */
  peers: { name: string; current: boolean; offline: boolean; lag: number }[];
  messages: number;
  bytes: number;
}

export interface LeaderReport {
  holder: string;
  term: number;
  expiresAtMs: number;
}

export interface ClusterReport {
  home: string | undefined;
  schedulers: string[];
  servers: ServerReport[];
  streams: StreamReport[];
  /** The scheduler lease; undefined when nobody holds it or it could not be read. */
  leader: LeaderReport | undefined;
  /** Why streams or the leader could not be read (NATS unreachable...). */
  problems: string[];
}

/** "ok" when a stream has a leader and every peer is current, else what is wrong. */
export function streamHealth(s: StreamReport): string {
  if (!s.leader) return "no leader";
  const offline = s.peers.filter((p) => p.offline).length;
  const behind = s.peers.filter((p) => !p.current && !p.offline).length;
  if (s.peers.length < s.replicas) return `${s.replicas - s.peers.length} peer(s) missing`;
  if (offline > 0) return `${offline} peer(s) offline`;
  if (behind > 0) return `${behind} peer(s) catching up`;
  return "ok";
}
