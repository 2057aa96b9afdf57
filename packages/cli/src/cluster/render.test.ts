import { describe, expect, it } from "vitest";
import { renderCluster } from "./render.js";
import type { ClusterReport, StreamReport } from "./report.js";
import { streamHealth } from "./report.js";

const stream = (over: Partial<StreamReport> = {}): StreamReport => ({
  name: "KV_capa_jobs",
  replicas: 3,
  cluster: "eu-west",
  leader: "eu-west-1",
  peers: [
    { name: "eu-west-1", current: true, offline: false, lag: 0 },
    { name: "eu-west-2", current: true, offline: false, lag: 0 },
    { name: "eu-west-3", current: true, offline: false, lag: 0 },
  ],
  messages: 42,
  bytes: 1000,
  ...over,
});

describe("streamHealth", () => {
  it.each([
    [stream(), "ok"],
    [stream({ leader: "" }), "no leader"],
    [stream({ peers: stream().peers.slice(0, 2) }), "1 peer(s) missing"],
    [
      stream({ peers: stream().peers.map((p, i) => (i === 2 ? { ...p, current: false, offline: true } : p)) }),
      "1 peer(s) offline",
    ],
    [
      stream({ peers: stream().peers.map((p, i) => (i === 1 ? { ...p, current: false } : p)) }),
      "1 peer(s) catching up",
    ],
  ])("%#: %s", (s, expected) => {
    expect(streamHealth(s)).toBe(expected);
  });
});

describe("renderCluster", () => {
  const report: ClusterReport = {
    home: "eu-west",
    schedulers: ["127.0.0.1:50051", "127.0.0.1:50052"],
    leader: { holder: "capa-up-1", term: 2, expiresAtMs: 10_000 },
    servers: [
      {
        monitorUrl: "http://127.0.0.1:8222",
        name: "eu-west-1",
        cluster: "eu-west",
        health: "ok",
        reachable: true,
        jetstream: true,
        connections: 5,
        routes: 2,
        gateways: [
          { name: "ap-northeast", connected: false },
          { name: "us-east", connected: true },
        ],
        uptime: "1m2s",
      },
      {
        monitorUrl: "http://127.0.0.1:8226",
        name: "",
        cluster: "",
        health: "unreachable: fetch failed",
        reachable: false,
        jetstream: false,
        connections: 0,
        routes: 0,
        gateways: [],
        uptime: "",
      },
    ],
    streams: [stream()],
    problems: [],
  };

  it("shows the home region, the lease, servers with gateways and streams with their replicas", () => {
    expect(renderCluster(report, 4_000)).toBe(
      [
        "home region: eu-west",
        "leader:      capa-up-1 (term 2, lease 6s left)",
        "schedulers:  127.0.0.1:50051, 127.0.0.1:50052",
        "",
        "SERVER                 CLUSTER  HEALTH                     JETSTREAM  CLIENTS  ROUTES  GATEWAYS                      UPTIME",
        "eu-west-1              eu-west  ok                         yes              5       2  ap-northeast (down), us-east  1m2s",
        "http://127.0.0.1:8226  -        unreachable: fetch failed  -                -       -  -                             -",
        "",
        "STREAM        REPLICAS  CLUSTER  LEADER     CURRENT  MESSAGES  HEALTH",
        "KV_capa_jobs         3  eu-west  eu-west-1  3/3            42  ok",
      ].join("\n"),
    );
  });

  it("says when the lease has expired or nobody holds it", () => {
    expect(renderCluster(report, 20_000)).toContain("leader:      none (last: capa-up-1, term 2, expired)");
    expect(renderCluster({ ...report, leader: undefined, streams: [], problems: ["x"] }, 0)).toContain(
      "leader:      none",
    );
  });
});
