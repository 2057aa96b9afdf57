/**
 * `capa up --regions 2` end to end: a real local supercluster (2 regions × 3 nats-servers, gateways, JetStream
 * R3 in the home region), 2 scheduler replicas and one agent per region, all started by the built CLI; then
 * every server embeds the per-agent nkey users; `capa cluster` reads the topology from the servers' monitoring endpoints and the JetStream API, a job is
 * submitted through an address list whose first replica is down, and SIGINT stops every nats-server.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@capa/testkit";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertCliBuilt,
  type CapaResult,
  exited,
  parseJsonOutput,
  processAlive,
  type RunningUp,
  runCapa,
  startCapaUp,
} from "./cli-harness.js";

interface RegionsReady {
  home: string;
  natsUrls: Record<string, string[]>;
  grpcAddresses: string[];
  clusterFile: string;
  credentials: { tenant: string; admin: string };
}
interface ClusterJson {
  home: string;
  leader?: { holder: string; term: number };
  servers: {
    name: string;
    cluster: string;
    health: string;
    jetstream: boolean;
    gateways: { name: string; connected: boolean }[];
  }[];
  streams: { name: string; replicas: number; cluster: string; leader: string; peers: { current: boolean }[] }[];
}

describe("capa up --regions 2, capa cluster, and a client with an address list", () => {
  let workDir: string;
  let up: RunningUp | undefined;
  let ready: RegionsReady;
  let pids: number[] = [];
  const capa = (args: string[], env: Record<string, string> = {}): Promise<CapaResult> =>
    runCapa(args, { cwd: workDir, env: { CAPA_CREDENTIALS: ready.credentials.tenant, ...env } });

  beforeAll(async () => {
    assertCliBuilt();
    workDir = mkdtempSync(join(tmpdir(), "capa-cli-regions-"));
    up = await startCapaUp(workDir, ["--regions", "2"]);
    ready = up.ready as unknown as RegionsReady;
    pids = (JSON.parse(readFileSync(ready.clusterFile, "utf8")) as { servers: { pid: number }[] }).servers.map(
      (s) => s.pid,
    );
  }, 120_000);

  afterAll(async () => {
    if (up && up.child.exitCode === null && up.child.signalCode === null) up.child.kill("SIGKILL");
    for (const pid of pids) if (processAlive(pid)) process.kill(pid, "SIGKILL");
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("starts 3 nats-servers per region and 2 scheduler replicas, home first", () => {
    expect(ready.home).toBe("eu-west");
    expect(Object.keys(ready.natsUrls)).toEqual(["eu-west", "us-east"]);
    for (const urls of Object.values(ready.natsUrls)) expect(urls).toHaveLength(3);
    expect(ready.grpcAddresses).toHaveLength(2);
    expect(pids).toHaveLength(6);
    expect(ready.clusterFile).toBe(join(workDir, ".capa", "supercluster", "cluster.json"));
  });

  it("runs every server with capa's generated NATS users: an anonymous client is refused in every region", async () => {
    for (const urls of Object.values(ready.natsUrls)) {
      await expect(connect({ servers: urls, reconnect: false, timeout: 3_000 })).rejects.toThrow(/authoriz/i);
    }
  });

  it("capa cluster shows servers, gateways, the leader and R3 streams in the home region, all healthy", async () => {
    const report = await waitFor(
      async () => {
        const r = parseJsonOutput<ClusterJson>(await capa(["cluster", "--json"]), "capa cluster");
        const current = r.streams.every((s) => s.peers.length === 3 && s.peers.every((p) => p.current));
        // A server's healthz also covers consumers, whose replicas catch up a moment after the streams do.
        const healthy = r.servers.every((s) => s.health === "ok");
        return current && healthy && r.leader && r.streams.length >= 10 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "a leader, every stream current and every server healthy" },
    );
    expect(report.servers.map((s) => s.name).sort()).toEqual([
      "eu-west-1",
      "eu-west-2",
      "eu-west-3",
      "us-east-1",
      "us-east-2",
      "us-east-3",
    ]);
    for (const s of report.servers) {
      expect(s.health, s.name).toBe("ok");
      expect(s.jetstream, s.name).toBe(s.cluster === "eu-west");
      expect(s.gateways, s.name).toEqual([{ name: s.cluster === "eu-west" ? "us-east" : "eu-west", connected: true }]);
    }
    expect(["capa-up-1", "capa-up-2"]).toContain(report.leader?.holder);
    for (const s of report.streams) {
      expect(s.replicas, s.name).toBe(3);
      expect(s.cluster, s.name).toBe("eu-west");
    }
    expect(report.streams.map((s) => s.name)).toEqual(
      expect.arrayContaining(["KV_capa_jobs", "CAPA_TASKS", "CAPA_LEDGER"]),
    );
    const table = await capa(["cluster"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^leader: +capa-up-[12] \(term \d+/m);
    expect(table.stdout).toMatch(/^KV_capa_jobs +3 +eu-west +eu-west-\d +3\/3 .* ok$/m);
  });

  it("a client given a dead replica first fails over to a live one and runs a job in each region", async () => {
    const addr = ["127.0.0.1:1", ...ready.grpcAddresses].join(",");
    for (const region of ["eu-west", "us-east"]) {
      const submitted = parseJsonOutput<{ job: { id: string } }>(
        await capa(["submit", "--json", "--gpus", "1", "--region", region, "--", "true"], { CAPA_GRPC_ADDR: addr }),
        "capa submit",
      );
      const done = await waitFor(
        async () => {
          const job = parseJsonOutput<{ state: string; tasks: { region: string }[] }>(
            await capa(["status", submitted.job.id, "--json"], { CAPA_GRPC_ADDR: addr }),
            "capa status",
          );
          return job.state === "succeeded" ? job : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `the ${region} job to succeed` },
      );
      expect(done.tasks[0]?.region).toBe(region);
    }
  });

  it("stops every nats-server, scheduler and agent on SIGINT and exits 0", async () => {
    const child = up!.child;
    child.kill("SIGINT");
    const exit = await exited(child);
    expect({ exit, stderr: exit.code === 0 ? "" : up!.output().stderr }).toEqual({
      exit: { code: 0, signal: null },
      stderr: "",
    });
    await waitFor(() => pids.every((pid) => !processAlive(pid)), { timeoutMs: 10_000, what: "nats-servers gone" });
  }, 90_000);
});
