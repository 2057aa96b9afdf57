/**
 * Load as gateways measure it (ReportLoad): requests and p95 latency per replica over each gateway's window.
 * A region's load is what its replicas served (from every gateway) plus what its own gateways could not place;
 * a report is used for three of its windows (at least 3 s), so a gateway that stops reporting stops counting.
 */
import type { RegionLoad } from "./autoscaler.js";

export interface GatewayReport {
  gatewayId: string;
  /** The gateway's client region. */
  region: string;
  windowMs: number;
  requests: number;
  replicas: { taskId: string; requests: number; errors: number; p95LatencyMs: number }[];
}

interface Stored extends GatewayReport {
  receivedAtMs: number;
}

const MAX_GATEWAYS_PER_SERVICE = 256;
const MAX_TOTALS = 10_000;

export class LoadTracker {
  private readonly byService = new Map<string, Map<string, Stored>>();
  /** Requests and errors per task since first reported (rollout verdicts compare against a step's baseline). */
  private readonly totalsByTask = new Map<string, { requests: number; errors: number }>();

  constructor(private readonly now: () => number) {}

  observe(serviceKey: string, report: GatewayReport): void {
    const gateways = this.byService.get(serviceKey) ?? new Map<string, Stored>();
    this.byService.set(serviceKey, gateways);
    gateways.delete(report.gatewayId);
    gateways.set(report.gatewayId, { ...report, receivedAtMs: this.now() });
    if (gateways.size > MAX_GATEWAYS_PER_SERVICE) gateways.delete(gateways.keys().next().value as string);
    for (const r of report.replicas) {
      const t = this.totalsByTask.get(r.taskId) ?? { requests: 0, errors: 0 };
      this.totalsByTask.delete(r.taskId);
      this.totalsByTask.set(r.taskId, { requests: t.requests + r.requests, errors: t.errors + r.errors });
    }
    while (this.totalsByTask.size > MAX_TOTALS)
      this.totalsByTask.delete(this.totalsByTask.keys().next().value as string);
  }

  totals(taskId: string): { requests: number; errors: number } {
    return this.totalsByTask.get(taskId) ?? { requests: 0, errors: 0 };
  }

  private fresh(serviceKey: string): Stored[] {
    const nowMs = this.now();
    return [...(this.byService.get(serviceKey)?.values() ?? [])].filter(
      (g) => nowMs - g.receivedAtMs <= Math.max(3_000, 3 * g.windowMs),
    );
  }

  /** Per replica: requests/s and p95 over the fresh reports. */
  replicaLoad(serviceKey: string): Map<string, { rps: number; p95: number; errors: number }> {
    const out = new Map<string, { rps: number; p95: number; errors: number }>();
    for (const g of this.fresh(serviceKey))
      for (const r of g.replicas) {
        const cur = out.get(r.taskId) ?? { rps: 0, p95: 0, errors: 0 };
        cur.rps += r.requests / (g.windowMs / 1000);
        cur.p95 = Math.max(cur.p95, r.p95LatencyMs);
        cur.errors += r.errors;
        out.set(r.taskId, cur);
      }
    return out;
  }

  /** Undefined when no gateway reports for the service at all (the autoscaler then holds). */
  regionLoad(serviceKey: string, region: string, regionOf: (taskId: string) => string | undefined) {
    const reports = this.fresh(serviceKey);
    if (reports.length === 0) return undefined;
    const load: RegionLoad = { requestsPerSecond: 0, p95LatencyMs: 0 };
    for (const g of reports) {
      const seconds = g.windowMs / 1000;
      let served = 0;
      for (const r of g.replicas) {
        served += r.requests;
        if (regionOf(r.taskId) !== region) continue;
        load.requestsPerSecond += r.requests / seconds;
        load.p95LatencyMs = Math.max(load.p95LatencyMs, r.p95LatencyMs);
      }
      if (g.region === region) load.requestsPerSecond += Math.max(0, g.requests - served) / seconds;
    }
    return load;
  }
}
