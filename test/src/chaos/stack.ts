/**
 * The system under fault, as real processes on loopback: a NATS supercluster (testkit: one cluster of 3
 * servers per region, gateways, JetStream R3 in the home region, capa's per-agent nkey users), `capa
 * scheduler` replicas as child processes on the home cluster (fixed ports, so a killed one restarts where
 * clients expect it), and `capa agent` child processes connected to their own region's servers with the
 * product's default heartbeat (2 s) and advert TTL (6 s). The fault suite (`chaos.test.ts`) and `npm run
 * chaos` (main.ts) both drive this, with different counts.
 */
import type { ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintKey } from "@capa/auth";
import { connectBus } from "@capa/bus";
import { SchedulerClient } from "@capa/cli";
import { type AuthDir, openAuthDir } from "@capa/nats-auth";
import { freePort, type SuperclusterHandle, startSupercluster, waitFor } from "@capa/testkit";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { assertCliBuilt, exited, startCapa } from "../cli-harness.js";

export interface ChaosStackOptions {
  /** The first is home (JetStream, schedulers). */
  regions: string[];
  agentsPerRegion: number;
  /** Simulated GPUs per agent, e.g. "4xH100-80GB". */
  gpus: string;
  schedulers: number;
  /** Extra `capa scheduler` flags (e.g. `--partition-grace`). */
  schedulerArgs?: string[];
  log?: (line: string) => void;
}

/** One long-running capa child process that can be killed and started again with the same arguments. */
export class CapaProcess {
  child: ChildProcess | undefined;
  private output: () => { stdout: string; stderr: string } = () => ({ stdout: "", stderr: "" });

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    /** Resolves once the process is ready for the fault suite. */
    private readonly ready: (p: CapaProcess) => Promise<void>,
    /** Every life's stdout and stderr are appended here (kept with CAPA_CHAOS_KEEP=1, for a post-mortem). */
    private readonly logFile?: string,
  ) {}

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  stderr(): string {
    return this.output().stderr;
  }

  async start(): Promise<void> {
    if (this.running()) return;
    const started = startCapa(this.args, { env: this.env });
    this.child = started.child;
    this.output = started.output;
    if (this.logFile) {
      const file = createWriteStream(this.logFile, { flags: "a" });
      file.write(`--- ${new Date().toISOString()} start pid ${this.child.pid}\n`);
      this.child.stdout?.pipe(file, { end: false });
      this.child.stderr?.pipe(file, { end: false });
      this.child.once("exit", (code, signal) => file.end(`--- exit ${code ?? signal}\n`));
    }
    await this.ready(this).catch((err: Error) => {
      throw new Error(`${this.name}: ${err.message}\nstderr:\n${this.stderr().slice(-2000)}`);
    });
  }

  /** SIGKILL by default; resolves once the process has exited. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    const done = exited(child);
    child.kill(signal);
    if (signal === "SIGTERM") {
      const stopped = await Promise.race([done.then(() => true), sleep(30_000).then(() => false)]);
      if (stopped) return;
      child.kill("SIGKILL");
    }
    await done;
  }
}

export interface AgentProcess extends CapaProcess {
  agentId: string;
  region: string;
  gpus: number;
}

export interface ChaosStack {
  sc: SuperclusterHandle;
  dir: string;
  auth: AuthDir;
  home: string;
  regions: string[];
  schedulers: CapaProcess[];
  schedulerIds: string[];
  /** "host:port" of each scheduler replica, in order. */
  addresses: string[];
  agents: AgentProcess[];
  adminToken: string;
  /** Where tasks write their marks (pids, run counts): a directory every task can reach. */
  marks: string;
  /** An HA client (the CLI's): every replica's address, failover and backoff on UNAVAILABLE. */
  client(retry?: { retries: number; minDelayMs: number; maxDelayMs: number; maxElapsedMs: number }): SchedulerClient;
  /** A NATS connection as the scheduler user (full access), for checkers; closed at stop. */
  nats(): Promise<NatsConnection>;
  /** The scheduler replica named in the live lease, if any. */
  leader(nc: NatsConnection): Promise<{ index: number; term: number; acquiredAtMs: number } | undefined>;
  /** Resolves once the scheduler lists every running agent as ready. */
  waitForAgents(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const HA_RETRY = { retries: 60, minDelayMs: 100, maxDelayMs: 1_000, maxElapsedMs: 60_000 };

export async function startChaosStack(o: ChaosStackOptions): Promise<ChaosStack> {
  assertCliBuilt();
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), "capa-chaos-"));
  const marks = join(dir, "marks");
  mkdirSync(marks, { recursive: true });
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  const auth = openAuthDir(join(dir, "nats-auth"));
  const home = o.regions[0]!;
  const agentIds = o.regions.flatMap((region) =>
    Array.from({ length: o.agentsPerRegion }, (_, i) => ({ agentId: `chaos-${region}-${i + 1}`, region })),
  );
  for (const a of agentIds) auth.enroll(a);
  const schedulerSeedFile = join(dir, "nats-auth", "scheduler.nk");
  auth.schedulerSeed();
  log(`starting a supercluster: ${o.regions.length} regions × 3 nats-servers`);
  const sc = await startSupercluster({
    regions: o.regions,
    dir: join(dir, "nats"),
    render: { auth: readFileSync(auth.authConfFile, "utf8") },
    startTimeoutMs: 60_000,
  });
  const cleanups: (() => Promise<void>)[] = [() => sc.stop()];
  const connections: NatsConnection[] = [];
  const adminToken = mintKey({ role: "admin", name: "chaos", createdBy: "chaos", nowMs: Date.now() }).token;
  const ports: number[] = [];
  while (ports.length < o.schedulers) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const schedulerIds = addresses.map((_, i) => `chaos-s${i + 1}`);
  const env = { CAPA_BOOTSTRAP_TOKEN: adminToken, CAPA_LOG_LEVEL: "warn" };
  const schedulers = addresses.map(
    (address, i) =>
      new CapaProcess(
        schedulerIds[i]!,
        [
          "scheduler",
          "--nats-url",
          sc.homeUrls.join(","),
          "--nats-nkey",
          schedulerSeedFile,
          "--grpc-address",
          address,
          "--id",
          schedulerIds[i]!,
          "--data-dir",
          join(dir, "scheduler"),
          ...(o.schedulerArgs ?? []),
          "--log-level",
          "info",
        ],
        env,
        (p) =>
          waitFor(
            () => {
              if (!p.running()) throw new Error(`exited ${p.child?.exitCode ?? p.child?.signalCode}`);
              return p.stderr().includes("serving gRPC on");
            },
            { timeoutMs: 90_000, intervalMs: 100, what: `${p.name} serving gRPC` },
          ).then(() => undefined),
        join(logs, `${schedulerIds[i]}.log`),
      ),
  );
  const stack: ChaosStack = {
    sc,
    dir,
    auth,
    home,
    regions: o.regions,
    schedulers,
    schedulerIds,
    addresses,
    agents: [],
    adminToken,
    marks,
    client: (retry = HA_RETRY) =>
      new SchedulerClient({ address: addresses.join(","), tenant: "", token: adminToken }, retry),
    async nats() {
      const nc = await connectBus({
        servers: sc.homeUrls,
        name: "capa-chaos-checker",
        nkeySeed: readFileSync(schedulerSeedFile, "utf8").trim(),
      });
      connections.push(nc);
      return nc;
    },
    async leader(nc) {
      const kv = await new Kvm(nc).open("capa_leader");
      const entry = await kv.get("scheduler");
      if (!entry || entry.length === 0) return undefined;
      const lease = entry.json<{ holder: string; term: number; expiresAtMs: number; acquiredAtMs: number }>();
      if (lease.expiresAtMs <= Date.now()) return undefined;
      const index = schedulerIds.indexOf(lease.holder);
      return index < 0 ? undefined : { index, term: lease.term, acquiredAtMs: lease.acquiredAtMs };
    },
    async waitForAgents(timeoutMs = 90_000) {
      const client = stack.client();
      try {
        await waitFor(
          async () => {
            const r = await client.listAgents({ region: "", limit: 0, pageToken: "" });
            const ready = new Set(r.agents.filter((a) => a.status === "ready").map((a) => a.agentId));
            return stack.agents.filter((a) => a.running()).every((a) => ready.has(a.agentId));
          },
          { timeoutMs, intervalMs: 250, what: "every running agent ready" },
        );
      } finally {
        client.close();
      }
    },
    async stop() {
      for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
      await Promise.all(stack.agents.map((a) => a.kill("SIGTERM")));
      await Promise.all(schedulers.map((s) => s.kill("SIGTERM")));
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      if (process.env.CAPA_CHAOS_KEEP === "1") log(`kept ${dir} (logs/, nats/, marks/)`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    log(`starting ${o.schedulers} scheduler replicas`);
    // The first alone, so it creates the buckets and streams before the others look for them.
    await schedulers[0]!.start();
    await Promise.all(schedulers.slice(1).map((s) => s.start()));
    const gpuCount = Number(/^(\d+)x/.exec(o.gpus)?.[1] ?? 1);
    stack.agents = agentIds.map(({ agentId, region }) => {
      const workDir = join(dir, "agents", agentId);
      mkdirSync(workDir, { recursive: true });
      const p = new CapaProcess(
        agentId,
        [
          "agent",
          "--nats-url",
          sc.urls(region).join(","),
          "--nats-nkey",
          auth.agentSeedFile(agentId),
          "--id",
          agentId,
          "--region",
          region,
          "--simulate-gpus",
          o.gpus,
          "--price",
          "H100-80GB=2.49/1.20",
          "--work-dir",
          workDir,
          "--container-runtime",
          "none",
          "--log-level",
          "warn",
        ],
        {},
        (self) =>
          waitFor(
            () => {
              if (!self.running()) throw new Error(`exited ${self.child?.exitCode ?? self.child?.signalCode}`);
              return true;
            },
            { timeoutMs: 5_000, what: `${agentId} started` },
          ).then(() => undefined),
        join(logs, `${agentId}.log`),
      ) as AgentProcess;
      return Object.assign(p, { agentId, region, gpus: gpuCount });
    });
    log(`starting ${stack.agents.length} agents`);
    await Promise.all(stack.agents.map((a) => a.start()));
    await stack.waitForAgents();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
