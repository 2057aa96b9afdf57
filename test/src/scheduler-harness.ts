/**
 * Test harness for the scheduler suites: a real nats-server, a scheduler on a free gRPC port, generated gRPC
 * clients over a real channel, and helpers (promisified calls, watch/log collectors, spec builders).
 *
 * The nats-server runs with capa's generated authorization (@capa/nats-auth), as in production: the scheduler and
 * `h.nc` connect as the scheduler's nkey user, anonymous clients are refused, and an agent needs its own user
 * (`h.enrollAgent` / `h.agentNats`), confined to its own subjects and assignment key.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { connectBus, decode, encode, ensureStore, type NatsConnection, type Store, subjects, TypedKv } from "@capa/bus";
import type { Advert, AgentAssignments, TaskAssignment, TaskStatusReport } from "@capa/domain";
import { type AuthDir, openAuthDir } from "@capa/nats-auth";
import { type SchedulerConfig, type SchedulerHandle, startScheduler } from "@capa/scheduler";
import { type NatsServerHandle, startNatsServer, waitFor } from "@capa/testkit";
import {
  type ClientOptions,
  credentials,
  status as grpcStatus,
  InterceptingCall,
  type Interceptor,
  type ServiceError,
} from "@grpc/grpc-js";
import pRetry from "p-retry";
import { pino } from "pino";

export const silent = pino({ level: process.env.CAPA_TEST_LOG ?? "silent" });

/** Client options that send `authorization: Bearer <token>` on every call (insecure channels cannot carry call credentials). */
export function withToken(token: string): ClientOptions {
  const bearer: Interceptor = (options, next) =>
    new InterceptingCall(next(options), {
      start(metadata, listener, nextStart) {
        metadata.set("authorization", `Bearer ${token}`);
        nextStart(metadata, listener);
      },
    });
  return { interceptors: [bearer] };
}

/** The bootstrap admin key a scheduler wrote into its data dir on its first start. */
export function adminTokenOf(scheduler: SchedulerHandle): string {
  if (!scheduler.adminCredentialsFile) throw new Error("this scheduler start made no admin credential");
  return (JSON.parse(readFileSync(scheduler.adminCredentialsFile, "utf8")) as { token: string }).token;
}

/** One set of clients of every service, all carrying one credential. */
export interface Clients {
  token: string;
  jobs: pb.JobServiceClient;
  operator: pb.OperatorServiceClient;
  billing: pb.BillingServiceClient;
  auth: pb.AuthServiceClient;
  audit: pb.AuditServiceClient;
  services: pb.ServiceServiceClient;
  schedules: pb.ScheduleServiceClient;
  close(): void;
}

export function clientsFor(address: string, token: string): Clients {
  const c = credentials.createInsecure();
  const o = withToken(token);
  const clients = {
    token,
    jobs: new pb.JobServiceClient(address, c, o),
    operator: new pb.OperatorServiceClient(address, c, o),
    billing: new pb.BillingServiceClient(address, c, o),
    auth: new pb.AuthServiceClient(address, c, o),
    audit: new pb.AuditServiceClient(address, c, o),
    services: new pb.ServiceServiceClient(address, c, o),
    schedules: new pb.ScheduleServiceClient(address, c, o),
    close() {
      for (const k of ["jobs", "operator", "billing", "auth", "audit", "services", "schedules"] as const)
        clients[k].close();
    },
  };
  return clients;
}

export interface Harness {
  nats: NatsServerHandle;
  nc: NatsConnection;
  store: Store;
  scheduler: SchedulerHandle;
  /** Admin clients (the bootstrap credential): operators act for the tenant named in each request. */
  jobs: pb.JobServiceClient;
  operator: pb.OperatorServiceClient;
  billing: pb.BillingServiceClient;
  services: pb.ServiceServiceClient;
  schedules: pb.ScheduleServiceClient;
  /** AuthService (API keys, tenant ceilings) as admin. */
  keys: pb.AuthServiceClient;
  audit: pb.AuditServiceClient;
  /** The bootstrap admin API key the scheduler wrote into its data dir on first start. */
  adminToken: string;
  /** Mints a key (through CreateKey, as admin) and returns its token. */
  mintKey(
    role: "tenant" | "provider" | "operator" | "admin",
    scope?: { tenant?: string; provider?: string; name?: string },
  ): Promise<string>;
  /** Clients carrying a tenant key for `tenant` (minted once per harness and tenant). */
  asTenant(tenant: string): Promise<Clients>;
  /** Clients carrying any token (closed at stop). */
  as(token: string): Clients;
  /** The scheduler's data dir (receipt signing key), a temp dir removed at stop. */
  dataDir: string;
  /** The NATS auth directory (scheduler key, enrolled agents, auth.conf) the server runs with. */
  auth: AuthDir;
  /** The scheduler's nkey seed: full access. */
  schedulerSeed: string;
  /** A new connection as the scheduler user (close it yourself). */
  connect(name: string): Promise<NatsConnection>;
  /** Enrolls an agent (its own NATS user) and reloads the server; returns its seed (the same one once enrolled). */
  enrollAgent(agentId: string, region: string): Promise<{ nkeySeed: string; seedFile: string }>;
  /** What `startAgent` needs to reach this NATS as the (newly enrolled) agent. */
  agentNats(agentId: string, region: string): Promise<{ nats: string; natsAuth: { nkeySeed: string } }>;
  /** Stops the scheduler and starts a new one on the same NATS (new gRPC port, new clients). */
  restartScheduler(overrides?: Partial<SchedulerConfig>): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(overrides: Partial<SchedulerConfig> = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "capa-scheduler-data-"));
  const auth = openAuthDir(join(dataDir, "nats-auth"));
  const schedulerSeed = auth.schedulerSeed();
  const nats = await startNatsServer({ authorization: readFileSync(auth.authConfFile, "utf8") });
  const connect = (name: string) => connectBus({ servers: nats.url, name, nkeySeed: schedulerSeed });
  const nc = await connect("scheduler-test");
  let enrolling: Promise<unknown> = Promise.resolve();
  const store = await ensureStore(nc);
  const config = (extra: Partial<SchedulerConfig>): SchedulerConfig => ({
    natsUrl: nats.url,
    natsNkeySeed: schedulerSeed,
    dataDir,
    grpcAddress: "127.0.0.1:0",
    // Every harness serves the HTTP edge on a free port, so route tests need no extra setup.
    httpPort: 0,
    logger: silent,
    leaseTtlMs: 3_000,
    logDrainGraceMs: 200,
    retryDelayMs: 100,
    ...overrides,
    ...extra,
  });
  const h: Harness = {
    nats,
    nc,
    store,
    scheduler: await startScheduler(config({})),
    jobs: undefined as unknown as pb.JobServiceClient,
    operator: undefined as unknown as pb.OperatorServiceClient,
    billing: undefined as unknown as pb.BillingServiceClient,
    services: undefined as unknown as pb.ServiceServiceClient,
    schedules: undefined as unknown as pb.ScheduleServiceClient,
    keys: undefined as unknown as pb.AuthServiceClient,
    audit: undefined as unknown as pb.AuditServiceClient,
    adminToken: "",
    dataDir,
    auth,
    schedulerSeed,
    connect,
    enrollAgent(agentId, region) {
      // One enrolment (and reload) at a time: concurrent reloads could each see the other's "Reloaded" line.
      const next = enrolling.then(async () => {
        const known = auth.agents().find((a) => a.agentId === agentId && a.region === region);
        if (known) {
          const seedFile = auth.agentSeedFile(agentId);
          return { nkeySeed: readFileSync(seedFile, "utf8").trim(), seedFile };
        }
        const e = auth.enroll({ agentId, region });
        await nats.setAuthorization(readFileSync(auth.authConfFile, "utf8"));
        return { nkeySeed: e.seed, seedFile: e.seedFile };
      });
      enrolling = next.catch(() => undefined);
      return next;
    },
    async agentNats(agentId, region) {
      const { nkeySeed } = await h.enrollAgent(agentId, region);
      return { nats: nats.url, natsAuth: { nkeySeed } };
    },
    async mintKey(role, scope = {}) {
      const create = () =>
        rpc<pb.CreateKeyResponse>((cb) =>
          h.keys.createKey(
            {
              role,
              name: scope.name ?? `${role}-${scope.tenant ?? scope.provider ?? "key"}`,
              tenant: scope.tenant ?? "",
              provider: scope.provider ?? "",
            },
            cb,
          ),
        );
      // As every capa client does (packages/cli/src/failover.ts), UNAVAILABLE is retried with backoff: the
      // harness's 3 s lease can lapse on a starved event loop (the full suite at load 10+), and a replica without
      // the lease refuses the write before it makes it. Should an UNAVAILABLE come after the key landed (a store
      // timeout), the retry only leaves one unused key behind: keys are independent records.
      return pRetry(async () => (await create()).token, {
        retries: 20,
        minTimeout: 100,
        maxTimeout: 1_000,
        factor: 2,
        randomize: true,
        shouldRetry: (err) => (err as unknown as ServiceError).code === grpcStatus.UNAVAILABLE,
      });
    },
    async asTenant(tenant) {
      let token = tenantTokens.get(tenant);
      if (!token) {
        token = await h.mintKey("tenant", { tenant });
        tenantTokens.set(tenant, token);
      }
      return h.as(token);
    },
    as(token) {
      const clients = clientsFor(h.scheduler.grpcAddress, token);
      extraClients.push(clients);
      return clients;
    },
    async restartScheduler(extra = {}) {
      closeClients();
      await h.scheduler.stop();
      h.scheduler = await startScheduler(config(extra));
      connectClients();
    },
    async stop() {
      closeClients();
      await h.scheduler?.stop();
      await nc.close();
      await nats.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const tenantTokens = new Map<string, string>();
  const extraClients: Clients[] = [];
  let admin: Clients | undefined;
  const closeClients = () => {
    admin?.close();
    for (const c of extraClients.splice(0)) c.close();
  };
  const connectClients = () => {
    // The first start wrote the bootstrap admin key into the data dir; later starts find keys and keep it.
    if (h.scheduler.adminCredentialsFile) h.adminToken = adminTokenOf(h.scheduler);
    admin = clientsFor(h.scheduler.grpcAddress, h.adminToken);
    Object.assign(h, {
      jobs: admin.jobs,
      operator: admin.operator,
      billing: admin.billing,
      keys: admin.auth,
      audit: admin.audit,
      services: admin.services,
      schedules: admin.schedules,
    });
  };
  connectClients();
  return h;
}

/** Promisifies one unary call: `rpc((cb) => client.getJob(req, cb))`. */
export function rpc<T>(invoke: (cb: (err: ServiceError | null, res: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The gRPC error a call fails with (fails the test if it succeeds). */
export async function rpcError<T>(
  invoke: (cb: (err: ServiceError | null, res: T) => void) => unknown,
): Promise<ServiceError> {
  try {
    await rpc(invoke);
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("expected the call to fail");
}

export function spec(overrides: Partial<pb.JobSpec> = {}, command: string[] = ["true"]): pb.JobSpec {
  return pb.JobSpec.fromPartial({
    kind: pb.JobKind.JOB_KIND_BATCH,
    replicas: 1,
    gpusPerReplica: 1,
    template: { command, env: {}, workingDir: "", killGraceSeconds: 2 },
    ...overrides,
  });
}

export function submit(
  h: Harness,
  jobSpec: pb.JobSpec,
  extra: Partial<pb.SubmitJobRequest> = {},
): Promise<pb.SubmitJobResponse> {
  return rpc((cb) => h.jobs.submitJob({ requestId: "", tenant: "acme", spec: jobSpec, ...extra }, cb));
}

/** One HTTP call to the harness scheduler's edge; the body is parsed as JSON when the answer is JSON. */
export async function httpCall(
  h: Harness,
  path: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const body =
    init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body);
  const res = await fetch(`${h.scheduler.httpUrl}${path}`, { method: init.method ?? "GET", headers, body });
  const text = await res.text();
  const json = res.headers.get("content-type")?.startsWith("application/json");
  return { status: res.status, headers: res.headers, body: json && text ? JSON.parse(text) : undefined, text };
}

export async function getJob(h: Harness, jobId: string): Promise<pb.Job> {
  return (await rpc<pb.GetJobResponse>((cb) => h.jobs.getJob({ jobId }, cb))).job!;
}

/** Collects a WatchJob stream; `done` resolves when the server ends it. */
export function watch(h: Harness, jobId: string) {
  const events: pb.JobEvent[] = [];
  const stream = h.jobs.watchJob({ jobId });
  const done = new Promise<void>((resolve, reject) => {
    stream.on("data", (e: pb.JobEvent) => events.push(e));
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
  return {
    events,
    done,
    /** Distinct consecutive job states, as names ("PENDING", ...). */
    states: () =>
      events
        .map((e) => pb.jobStateToJSON(e.state).replace("JOB_STATE_", ""))
        .filter((s, i, all) => i === 0 || all[i - 1] !== s),
    cancel: () => stream.cancel(),
  };
}

/** Collects a StreamLogs stream as text per task. */
export function logs(h: Harness, jobId: string, follow: boolean, taskId = "") {
  const lines: pb.LogLine[] = [];
  const stream = h.jobs.streamLogs({ jobId, follow, taskId });
  const done = new Promise<void>((resolve, reject) => {
    stream.on("data", (l: pb.LogLine) => lines.push(l));
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
  const text = (stream?: pb.LogStream) =>
    lines
      .filter((l) => stream === undefined || l.stream === stream)
      .map((l) => Buffer.from(l.data).toString())
      .join("");
  return { lines, done, text, cancel: () => stream.cancel() };
}

/** Waits until the job is final (SUCCEEDED, FAILED or CANCELLED) and returns it. */
export async function finalJob(h: Harness, jobId: string, timeoutMs = 60_000): Promise<pb.Job> {
  let job: pb.Job | undefined;
  await waitFor(
    async () => {
      job = await getJob(h, jobId);
      return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(stateName(job.state));
    },
    { what: `job ${jobId} final`, timeoutMs },
  );
  return job!;
}

export function stateName(state: pb.JobState): string {
  return pb.jobStateToJSON(state).replace("JOB_STATE_", "");
}

export const H100_PRICE = { gpuModel: "H100-80GB", onDemandPerHour: 2_490_000, interruptiblePerHour: 1_200_000 };

/**
 * A test-only agent speaking the bus protocol: publishes adverts and heartbeats, reads its assignments from
 * `capa_allocs/<id>`, and reports statuses and logs for them. It runs nothing; tests drive every report, and
 * `silence()` makes it vanish without a word (agent loss).
 */
export class FakeAgent {
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  readonly bootId = `boot-${Math.random().toString(36).slice(2)}`;
  private readonly allocs: TypedKv<AgentAssignments>;

  constructor(
    private readonly h: Harness,
    readonly agentId: string,
    readonly region = "eu-west",
    readonly gpuCount = 4,
  ) {
    this.allocs = new TypedKv(h.store.allocs, { encode: encode.assignments, decode: decode.assignments });
  }

  advert(): Advert {
    return {
      agentId: this.agentId,
      region: this.region,
      zone: `${this.region}-a`,
      hostname: this.agentId,
      gpus: Array.from({ length: this.gpuCount }, (_, index) => ({
        index,
        uuid: `GPU-${this.agentId}-${index}`,
        model: "H100-80GB",
        vramMib: 81920,
        health: "ok" as const,
        migEnabled: false,
        utilizationPct: 0,
        memoryUsedMib: 0,
        temperatureC: 40,
        driverVersion: "550",
      })),
      cpuCores: 32,
      memoryMib: 256_000,
      labels: {},
      fabricDomain: "",
      prices: [H100_PRICE],
      simulated: true,
      sequence: ++this.sequence,
      sentAtMs: Date.now(),
      ttlSeconds: 30,
      version: "fake",
      bootId: this.bootId,
      provider: "fake",
      residency: "eu",
      reliability: 1,
    };
  }

  start(periodMs = 100): this {
    const beat = () => {
      this.h.nc.publish(subjects.advert(this.region, this.agentId), encode.advert(this.advert()));
      this.h.nc.publish(
        subjects.heartbeat(this.region, this.agentId),
        encode.heartbeat({
          agentId: this.agentId,
          region: this.region,
          bootId: this.bootId,
          sequence: this.sequence,
          sentAtMs: Date.now(),
          gpus: [],
          runningTaskIds: [],
          freeGpus: this.gpuCount,
        }),
      );
    };
    beat();
    this.timer = setInterval(beat, periodMs);
    return this;
  }

  silence(): void {
    clearInterval(this.timer);
  }

  async assignments(): Promise<TaskAssignment[]> {
    return (await this.allocs.get(this.agentId))?.value.tasks ?? [];
  }

  async report(
    a: TaskAssignment,
    state: TaskStatusReport["state"],
    extra: Partial<TaskStatusReport> = {},
  ): Promise<void> {
    const js = this.h.store.js;
    const status: TaskStatusReport = {
      taskId: a.taskId,
      jobId: a.jobId,
      agentId: this.agentId,
      epoch: a.epoch,
      state,
      exitCode: 0,
      signal: "",
      startedAtMs: Date.now(),
      finishedAtMs: FINAL.has(state) ? Date.now() : 0,
      message: "",
      sentAtMs: Date.now(),
      bootId: this.bootId,
      ...extra,
    };
    await js.publish(subjects.taskStatus(a.taskId, this.agentId), encode.status(status));
  }

  async log(a: TaskAssignment, text: string, seq: number): Promise<void> {
    await this.h.store.js.publish(
      subjects.taskLogs(a.taskId, this.agentId),
      encode.log({
        taskId: a.taskId,
        jobId: a.jobId,
        stream: "stdout",
        data: Buffer.from(text),
        seq,
        atMs: Date.now(),
      }),
    );
  }
}

const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected", "lost", "preempted"]);
