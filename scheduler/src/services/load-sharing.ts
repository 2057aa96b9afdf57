/**
 * Gateway load reports under HA. A report reaches one replica (the leader, as followers forward ReportLoad to it;
 * or a follower serving it during a failover). That replica publishes what it accepted on
 * `capa.v1.service.<tenant>.<service>.load`, and every replica observes the reports the others accepted, so the
 * leader's autoscaler and rollout verdicts and any replica's GetService see the same load, and a newly elected
 * leader already holds the last windows. Only the scheduler's NATS user may publish there.
 */
import { type NatsConnection, subjects } from "@capa/bus";
import type { Logger } from "pino";
import type { GatewayReport, LoadTracker } from "./load.js";
import { serviceKey } from "./model.js";

interface Shared {
  from: string;
  tenant: string;
  name: string;
  report: GatewayReport;
}

export function shareLoad(nc: NatsConnection, replicaId: string, log: Logger) {
  return (tenant: string, name: string, report: GatewayReport): void => {
    try {
      const msg: Shared = { from: replicaId, tenant, name, report };
      nc.publish(subjects.serviceLoad(tenant, name), JSON.stringify(msg));
    } catch (err) {
      // A name that is no subject token cannot be shared; the receiving replica still counts it.
      log.debug({ err, tenant, name }, "load report not shared");
    }
  };
}

/** Observes the reports other replicas accepted; returns the unsubscribe. */
export function followSharedLoad(nc: NatsConnection, replicaId: string, load: LoadTracker, log: Logger) {
  const sub = nc.subscribe(subjects.allServiceLoad, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const m = msg.json<Shared>();
        if (m.from === replicaId || !Array.isArray(m.report?.replicas)) return;
        load.observe(serviceKey(m.tenant, m.name), m.report);
      } catch (e) {
        log.warn({ err: e }, "dropping an undecodable shared load report");
      }
    },
  });
  return () => sub.unsubscribe();
}
