/**
 * `capa gateway`: one HTTP entry point for a service. It follows the service's live endpoint set (ListEndpoints,
 * every `refreshMs`), sends each request to the nearest ready replica with the least load (pick.ts) through
 * http-proxy-3, measures requests, errors and p95 latency per replica, and reports them to the scheduler every
 * `reportMs` (ReportLoad), which autoscales on them. A request that could not reach a replica (connection
 * refused or reset before any answer) is retried on another one when it is idempotent (GET, HEAD, OPTIONS): a
 * replica that just went away costs no failed request. `/_capa/endpoints` and `/_capa/stats` answer JSON.
 */
import { Agent, createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_TABLES } from "@capa/placement";
import { createProxyServer } from "http-proxy-3";
import { pickTarget, type Target, type TargetState } from "./pick.js";
import { LoadWindow, type WindowReport } from "./stats.js";

/** What the gateway needs from the scheduler (the CLI passes its gRPC client). */
export interface GatewaySource {
  listEndpoints(req: { tenant: string; name: string; region: string }): Promise<{ endpoints: Target[] }>;
  reportLoad(req: {
    tenant: string;
    name: string;
    gatewayId: string;
    region: string;
    windowMs: number;
    requests: number;
    replicas: WindowReport["replicas"];
  }): Promise<unknown>;
}

export interface GatewayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface GatewayOptions {
  source: GatewaySource;
  tenant: string;
  service: string;
  /** The region of the gateway's clients: its replicas are the nearest. */
  region: string;
  gatewayId?: string;
  host?: string;
  port?: number;
  refreshMs?: number;
  reportMs?: number;
  /** Round-trip time between regions (default: placement's network table). */
  rttMs?: (from: string, to: string) => number;
  /** Upstream answer timeout (default 30 s). */
  proxyTimeoutMs?: number;
  logger?: GatewayLogger;
}

export interface GatewayStats {
  endpoints: Target[];
  replicas: (Target & TargetState & { requests: number; errors: number })[];
  requests: number;
  failed: number;
  retried: number;
  noReplica: number;
}

export interface GatewayHandle {
  address: string;
  stats(): GatewayStats;
  /** Fetches the endpoint set now (tests; the gateway does it on its own every refreshMs). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS"]);
const MAX_ATTEMPTS = 3;
const PENALTY_MS = 2_000;
const silent: GatewayLogger = { info() {}, warn() {} };

export async function startGateway(o: GatewayOptions): Promise<GatewayHandle> {
  const log = o.logger ?? silent;
  const gatewayId = o.gatewayId ?? `gw-${o.region}-${process.pid}`;
  const rttMs = o.rttMs ?? ((a: string, b: string) => DEFAULT_TABLES.rttMs(a, b));
  const now = () => Date.now();
  let targets: Target[] = [];
  const states = new Map<string, TargetState & { requests: number; errors: number }>();
  const state = (taskId: string) => {
    let s = states.get(taskId);
    if (!s) {
      s = { inFlight: 0, ewmaMs: 0, lastPickedSeq: 0, penaltyUntilMs: 0, requests: 0, errors: 0 };
      states.set(taskId, s);
    }
    return s;
  };
  const totals = { requests: 0, failed: 0, retried: 0, noReplica: 0 };
  let seq = 0;
  const window = new LoadWindow(now);
  const upstream = new Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = createProxyServer({ agent: upstream, proxyTimeout: o.proxyTimeoutMs ?? 30_000, xfwd: true });

  const refresh = async () => {
    const res = await o.source.listEndpoints({ tenant: o.tenant, name: o.service, region: "" });
    targets = res.endpoints.map((e) => ({
      taskId: e.taskId,
      region: e.region,
      host: e.host,
      port: e.port,
      revision: e.revision,
      trafficPercent: e.trafficPercent,
    }));
    const live = new Set(targets.map((t) => t.taskId));
    for (const [taskId, s] of states) if (!live.has(taskId) && s.inFlight === 0) states.delete(taskId);
  };

  const send = (req: IncomingMessage, res: ServerResponse, tried: Set<string>) => {
    const target = pickTarget({ targets, state, region: o.region, rttMs, nowMs: now(), exclude: tried });
    if (!target) {
      if (tried.size === 0) totals.noReplica++;
      totals.failed++;
      respond(res, tried.size === 0 ? 503 : 502, {
        error: tried.size === 0 ? `no ready replica of ${o.service}` : "every replica tried failed",
      });
      return;
    }
    tried.add(target.taskId);
    const s = state(target.taskId);
    s.inFlight++;
    s.lastPickedSeq = ++seq;
    const startedAt = performance.now();
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return false;
      settled = true;
      s.inFlight--;
      const latency = performance.now() - startedAt;
      s.requests++;
      if (failed) s.errors++;
      else s.ewmaMs = s.ewmaMs === 0 ? latency : 0.8 * s.ewmaMs + 0.2 * latency;
      window.record(target.taskId, latency, failed);
      return true;
    };
    res.once("finish", () => settle((res.statusCode ?? 0) >= 500));
    res.once("close", () => settle(!res.writableFinished));
    proxy.web(req, res, { target: `http://${target.host}:${target.port}` }, (err: Error) => {
      if (!settle(true)) return;
      s.penaltyUntilMs = now() + PENALTY_MS;
      const retry = IDEMPOTENT.has(req.method ?? "") && !res.headersSent && tried.size < MAX_ATTEMPTS;
      if (retry) {
        totals.retried++;
        send(req, res, tried);
        return;
      }
      log.warn({ err, taskId: target.taskId }, "request to a replica failed");
      totals.failed++;
      if (!res.headersSent) respond(res, 502, { error: `replica ${target.taskId} failed: ${err.message}` });
      else res.destroy();
    });
  };

  const server = createServer((req, res) => {
    if (req.url === "/_capa/endpoints") {
      respond(res, 200, { service: o.service, region: o.region, endpoints: targets });
      return;
    }
    if (req.url === "/_capa/stats") {
      respond(res, 200, stats());
      return;
    }
    totals.requests++;
    window.arrived();
    send(req, res, new Set());
  });
  const stats = (): GatewayStats => ({
    endpoints: [...targets],
    replicas: targets.map((t) => ({ ...t, ...state(t.taskId) })),
    ...totals,
  });

  await refresh().catch((err) => log.warn({ err }, "no endpoint set yet; retrying"));
  const refreshTimer = setInterval(() => {
    refresh().catch((err) => log.warn({ err }, "endpoint refresh failed; keeping the last set"));
  }, o.refreshMs ?? 500);
  const reportTimer = setInterval(() => {
    const w = window.roll();
    o.source
      .reportLoad({ tenant: o.tenant, name: o.service, gatewayId, region: o.region, ...w })
      .catch((err) => log.warn({ err }, "load report failed"));
  }, o.reportMs ?? 1_000);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  log.info({ address: `${addr.address}:${addr.port}`, service: o.service, region: o.region }, "gateway listening");
  return {
    address: `${addr.address}:${addr.port}`,
    stats,
    refresh,
    async stop() {
      clearInterval(refreshTimer);
      clearInterval(reportTimer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      proxy.close();
      upstream.destroy();
    },
  };
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
