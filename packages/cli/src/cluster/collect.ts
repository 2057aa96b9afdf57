/**
 * Collects `capa cluster`'s report from real sources: each server's HTTP monitoring endpoints (/varz,
 * /healthz, /gatewayz), the JetStream API for stream placement and replica health, and the scheduler lease in
 * KV `capa_leader`. Unreachable pieces are reported, never fatal: the point is to see what is down.
 */
import { BUCKETS, connectBus } from "@capa/bus";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { ClusterReport, LeaderReport, ServerReport, StreamReport } from "./report.js";

const FETCH_TIMEOUT_MS = 2_000;

async function getJson<T>(url: string): Promise<{ ok: boolean; status: number; body: T | undefined }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  let body: T | undefined;
  try {
    body = (await response.json()) as T;
  } catch {
    body = undefined;
  }
  return { ok: response.ok, status: response.status, body };
}

interface Varz {
  server_name?: string;
  cluster?: { name?: string };
  connections?: number;
  routes?: number;
  uptime?: string;
  jetstream?: { config?: unknown };
}
interface Gatewayz {
  outbound_gateways?: Record<string, { connection?: { name?: string } }>;
}

export async function collectServer(monitorUrl: string): Promise<ServerReport> {
  const base = monitorUrl.replace(/\/+$/, "");
  try {
    const varz = (await getJson<Varz>(`${base}/varz`)).body ?? {};
    const health = await getJson<{ status?: string; error?: string }>(`${base}/healthz`);
    const gatewayz = (await getJson<Gatewayz>(`${base}/gatewayz`)).body ?? {};
    return {
      monitorUrl: base,
      name: varz.server_name ?? "",
      cluster: varz.cluster?.name ?? "",
      health: health.ok ? "ok" : (health.body?.error ?? `healthz ${health.status}`),
      reachable: true,
      jetstream: varz.jetstream?.config !== undefined,
      connections: varz.connections ?? 0,
      routes: varz.routes ?? 0,
      gateways: Object.entries(gatewayz.outbound_gateways ?? {})
        .map(([name, g]) => ({ name, connected: g.connection?.name !== undefined }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      uptime: varz.uptime ?? "",
    };
  } catch (err) {
    return {
      monitorUrl: base,
      name: "",
      cluster: "",
      health: `unreachable: ${(err as Error).message}`,
      reachable: false,
      jetstream: false,
      connections: 0,
      routes: 0,
      gateways: [],
      uptime: "",
    };
  }
}

/** capa's streams: KV buckets (streams `KV_capa_*`) and CAPA_TASKS, CAPA_LOGS, CAPA_LEDGER. */
const CAPA_STREAM = /^(KV_capa_|CAPA_)/;

export async function collectJetStream(
  natsUrls: string[],
  nkeySeed?: string,
): Promise<{ streams: StreamReport[]; leader: LeaderReport | undefined }> {
  const nc = await connectBus({
    servers: natsUrls,
    name: "capa-cluster",
    maxReconnectAttempts: 0,
    timeoutMs: 3_000,
    ...(nkeySeed ? { nkeySeed } : {}),
  });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 3_000 });
    const streams: StreamReport[] = [];
    for await (const info of jsm.streams.list()) {
      if (!CAPA_STREAM.test(info.config.name)) continue;
      const cluster = info.cluster;
      const peers = [
        ...(cluster?.leader ? [{ name: cluster.leader, current: true, offline: false, lag: 0 }] : []),
        ...(cluster?.replicas ?? []).map((r) => ({
          name: r.name,
          current: r.current,
          offline: r.offline ?? false,
          lag: r.lag ?? 0,
        })),
      ];
      streams.push({
        name: info.config.name,
        replicas: info.config.num_replicas,
        cluster: cluster?.name ?? "",
        leader: cluster?.leader ?? "",
        peers,
        messages: info.state.messages,
        bytes: info.state.bytes,
      });
    }
    streams.sort((a, b) => a.name.localeCompare(b.name));
    let leader: LeaderReport | undefined;
    try {
      const kv = await new Kvm(nc).open(BUCKETS.leader);
      const entry = await kv.get("scheduler");
      if (entry && entry.operation === "PUT") {
        const lease = JSON.parse(new TextDecoder().decode(entry.value)) as LeaderReport;
        leader = { holder: lease.holder, term: lease.term, expiresAtMs: lease.expiresAtMs };
      }
    } catch {
      leader = undefined;
    }
    return { streams, leader };
  } finally {
    await nc.close();
  }
}

export async function collectCluster(source: {
  monitorUrls: string[];
  natsUrls: string[];
  /** nkey seed for the NATS connection when the servers require auth. */
  nkeySeed?: string;
  home?: string;
  schedulers?: string[];
}): Promise<ClusterReport> {
  const servers = await Promise.all(source.monitorUrls.map(collectServer));
  const problems: string[] = [];
  let streams: StreamReport[] = [];
  let leader: LeaderReport | undefined;
  if (source.natsUrls.length > 0) {
    try {
      ({ streams, leader } = await collectJetStream(source.natsUrls, source.nkeySeed));
    } catch (err) {
      problems.push(`JetStream at ${source.natsUrls.join(",")}: ${(err as Error).message}`);
    }
  }
  return { home: source.home, schedulers: source.schedulers ?? [], servers, streams, leader, problems };
}
