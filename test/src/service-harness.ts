/**
 * Helpers for the inference-service suites: agents as real `capa agent` child processes, a tiny Node HTTP server
 * as the model (answers `/` with its task id and region, `/healthz` 200, or 500s for everything when
 * MODEL_FAIL=1), and ServiceService calls over the harness's gRPC client.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { type GatewayHandle, startGateway } from "@capa/gateway";
import { waitFor } from "@capa/testkit";
import { exited, startCapa } from "./cli-harness.js";
import { type Harness, rpc, startHarness } from "./scheduler-harness.js";

export const MODEL_SOURCE = `
const http = require("node:http");
const fail = process.env.MODEL_FAIL === "1";
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(200); res.end("ok"); return; }
  if (fail) { res.writeHead(500); res.end("broken model"); return; }
  const delay = Number(process.env.MODEL_DELAY_MS || 0);
  setTimeout(() => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ task: process.env.CAPA_TASK_ID, model: process.env.CAPA_MODEL_VERSION }));
  }, delay);
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
// Model metrics for drift monitoring: the score is read from a file the test writes.
if (process.env.MODEL_DRIFT_FILE) {
  let predictions = 0;
  setInterval(() => {
    let drift = 0;
    try { drift = Number(require("node:fs").readFileSync(process.env.MODEL_DRIFT_FILE, "utf8")) || 0; } catch {}
    predictions += 10;
    console.log("CAPA_METRICS " + JSON.stringify({ drift_score: drift, predictions }));
  }, 200);
}
`;

export function writeModel(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "model.cjs");
  writeFileSync(path, MODEL_SOURCE);
  return path;
}

export interface AgentProcess {
  id: string;
  region: string;
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
}

export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export async function startAgentProcess(
  h: Harness,
  root: string,
  id: string,
  region: string,
  price: string,
  gpus = "4xH100-80GB",
  /** More `capa agent` flags, e.g. ["--label", "pool=x"]. */
  extraArgs: readonly string[] = [],
): Promise<AgentProcess> {
  const workDir = join(root, id);
  mkdirSync(workDir, { recursive: true });
  const { seedFile } = await h.enrollAgent(id, region);
  const agent: AgentProcess = {
    id,
    region,
    ...startCapa([
      "agent",
      "--nats-url",
      h.nats.url,
      "--nats-nkey",
      seedFile,
      "--id",
      id,
      "--region",
      region,
      "--simulate-gpus",
      gpus,
      "--price",
      `H100-80GB=${price}`,
      "--work-dir",
      workDir,
      "--advert-interval",
      "500ms",
      "--heartbeat-interval",
      "200ms",
      "--advert-ttl",
      "3s",
      "--log-level",
      "warn",
      ...extraArgs,
    ]),
  };
  await waitFor(
    async () => {
      if (!running(agent.child)) throw new Error(`capa agent ${id} exited: ${agent.output().stderr}`);
      const r = await rpc<pb.ListAgentsResponse>((cb) =>
        h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
      );
      return r.agents.find((a) => a.agentId === id)?.status === "ready";
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `agent ${id} ready` },
  );
  return agent;
}

export async function stopAgentProcess(agent: AgentProcess): Promise<void> {
  if (!running(agent.child)) return;
  agent.child.kill("SIGTERM");
  const stopped = await Promise.race([
    exited(agent.child).then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
  ]);
  if (!stopped && running(agent.child)) {
    agent.child.kill("SIGKILL");
    await exited(agent.child);
  }
}

export function serviceSpec(modelPath: string, overrides: Partial<pb.ServiceSpec> = {}): pb.ServiceSpec {
  return pb.ServiceSpec.fromPartial({
    name: "echo",
    template: { command: [process.execPath, modelPath], env: {}, workingDir: "", killGraceSeconds: 2 },
    readiness: { httpPath: "/healthz", periodMs: 300, failureThreshold: 2 },
    regions: [
      { region: "eu-west", minReplicas: 1, maxReplicas: 4 },
      { region: "us-east", minReplicas: 1, maxReplicas: 2 },
    ],
    gpusPerReplica: 1,
    modelVersion: "v1",
    ...overrides,
  });
}

export const TENANT = "acme";

export function applyService(h: Harness, spec: pb.ServiceSpec): Promise<pb.ApplyServiceResponse> {
  return rpc((cb) => h.services.applyService({ tenant: TENANT, spec }, cb));
}

export async function getService(h: Harness, name: string): Promise<pb.Service> {
  return (await rpc<pb.GetServiceResponse>((cb) => h.services.getService({ tenant: TENANT, name }, cb))).service!;
}

export async function endpoints(h: Harness, name: string, region = ""): Promise<pb.Endpoint[]> {
  const r = await rpc<pb.ListEndpointsResponse>((cb) =>
    h.services.listEndpoints({ tenant: TENANT, name, region, limit: 0, pageToken: "" }, cb),
  );
  return r.endpoints;
}

/** GET http://host:port/path → status and body (loopback only). */
export function httpGet(
  host: string,
  port: number,
  path = "/",
  timeoutMs = 5_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: "GET", timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.once("timeout", () => req.destroy(new Error("timed out")));
    req.once("error", reject);
    req.end();
  });
}

export interface GatewayProcess {
  child: ChildProcess;
  address: string;
  output: () => { stdout: string; stderr: string };
}

/** The built `capa gateway` as a child process on a free port; resolves once it listens. */
export async function startGatewayProcess(h: Harness, service: string, region: string): Promise<GatewayProcess> {
  const started = startCapa(
    [
      "gateway",
      "--addr",
      h.scheduler.grpcAddress,
      "--tenant",
      TENANT,
      "--service",
      service,
      "--region",
      region,
      "--port",
      "0",
      "--log-level",
      "warn",
    ],
    // A gateway lists endpoints and reports load with a credential (the harness's admin key, acting for TENANT).
    { env: { CAPA_TOKEN: h.adminToken } },
  );
  const address = await waitFor(
    () => {
      if (!running(started.child)) throw new Error(`capa gateway exited: ${started.output().stderr}`);
      return /on http:\/\/(\S+)/.exec(started.output().stderr)?.[1];
    },
    { timeoutMs: 30_000, intervalMs: 50, what: "capa gateway listening" },
  );
  return { ...started, address };
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  child.kill("SIGTERM");
  await exited(child);
}

export function split(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/** An in-process gateway (packages/gateway) over the harness's gRPC client, fast refresh and reports. */
export function startTestGateway(h: Harness, region: string, gatewayId: string): Promise<GatewayHandle> {
  return startGateway({
    source: {
      listEndpoints: (req) =>
        rpc<pb.ListEndpointsResponse>((cb) => h.services.listEndpoints({ limit: 0, pageToken: "", ...req }, cb)),
      reportLoad: (req) => rpc((cb) => h.services.reportLoad(req, cb)),
    },
    tenant: TENANT,
    service: "echo",
    region,
    gatewayId,
    refreshMs: 300,
    reportMs: 500,
  });
}

/**
 * The shared setup of the service suites: a harness (agents lost after 3 s), the model script, agent processes
 * (`[id, region, price, gpus?]`), and the gateways a test starts; `stop` tears everything down.
 */
export async function startServiceFixture(
  prefix: string,
  agentSpecs: [string, string, string, string?][],
  overrides: Parameters<typeof startHarness>[0] = {},
) {
  const root = mkdtempSync(join(tmpdir(), `capa-${prefix}-`));
  const model = writeModel(root);
  const h = await startHarness({ agentTimeoutMs: 3_000, ...overrides });
  const agents = await Promise.all(
    agentSpecs.map(([id, region, price, gpus]) => startAgentProcess(h, root, id, region, price, gpus)),
  );
  const gateways: GatewayHandle[] = [];
  return {
    h,
    root,
    model,
    agents,
    gateways,
    async stop() {
      await Promise.all(gateways.map((g) => g.stop()));
      await Promise.all(agents.map((a) => stopAgentProcess(a)));
      await h.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
