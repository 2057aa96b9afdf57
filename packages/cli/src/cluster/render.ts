/** `capa cluster` for people: the topology, the scheduler lease, and every capa stream's replicas. Pure. */
import { formatDuration, renderTable } from "../format.js";
import { type ClusterReport, streamHealth } from "./report.js";

export function renderCluster(report: ClusterReport, nowMs: number): string {
  const lease = report.leader
    ? report.leader.expiresAtMs > nowMs
      ? `${report.leader.holder} (term ${report.leader.term}, lease ${formatDuration(Math.ceil((report.leader.expiresAtMs - nowMs) / 1000))} left)`
      : `none (last: ${report.leader.holder}, term ${report.leader.term}, expired)`
    : "none";
  const head = [
    `home region: ${report.home ?? "-"}`,
    `leader:      ${lease}`,
    ...(report.schedulers.length > 0 ? [`schedulers:  ${report.schedulers.join(", ")}`] : []),
  ];
  const servers = renderTable(
    ["SERVER", "CLUSTER", "HEALTH", "JETSTREAM", "CLIENTS", "ROUTES", "GATEWAYS", "UPTIME"],
    report.servers.map((s) => [
      s.name || s.monitorUrl,
      s.cluster || "-",
      s.health,
      s.reachable ? (s.jetstream ? "yes" : "no") : "-",
      s.reachable ? s.connections : "-",
      s.reachable ? s.routes : "-",
      s.gateways.length > 0 ? s.gateways.map((g) => `${g.name}${g.connected ? "" : " (down)"}`).join(", ") : "-",
      s.uptime || "-",
    ]),
    { rightAlign: [4, 5] },
  );
  const streams = renderTable(
    ["STREAM", "REPLICAS", "CLUSTER", "LEADER", "CURRENT", "MESSAGES", "HEALTH"],
    report.streams.map((s) => [
      s.name,
      s.replicas,
      s.cluster || "-",
      s.leader || "-",
      `${s.peers.filter((p) => p.current).length}/${s.replicas}`,
      s.messages,
      streamHealth(s),
    ]),
    { rightAlign: [1, 5] },
  );
  return [
    ...head,
    "",
    servers,
    "",
    report.streams.length > 0 ? streams : "no capa streams found",
    ...report.problems.map((p) => `problem: ${p}`),
  ].join("\n");
}
