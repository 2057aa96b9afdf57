/**
 * The CLI happy path end to end: `capa up` (real nats-server, scheduler and simulated agents) as a child
 * process in a scratch directory, then `capa submit/status/logs/jobs` against it as separate processes, then
 * SIGINT stops everything `capa up` started.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus } from "@capa/bus";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertCliBuilt,
  type CapaResult,
  exited,
  parseJsonOutput,
  processAlive,
  runCapa,
  startCapa,
} from "./cli-harness.js";

interface UpReady {
  natsUrl: string;
  natsAuthDir: string;
  natsPid: number;
  grpcAddress: string;
  consoleUrl: string;
  stateDir: string;
  pricesSource: string;
  metricsUrls: { scheduler: string; agents: string };
  agents: { agentId: string; region: string; prices: { gpuModel: string; onDemandPerHour: number }[] }[];
  credentials: { dir: string; admin: string; tenant: string; provider: string };
}

interface JobView {
  id: string;
  state: string;
  tasks: { agentId: string; region: string; gpuIndices: number[]; pricePerGpuHour: number; exitCode: number }[];
}

describe("capa up, then the tenant verbs against it", () => {
  let workDir: string;
  let up: { child: ChildProcess; output: () => { stdout: string; stderr: string } } | undefined;
  let ready: UpReady;
  const capa = (args: string[]): Promise<CapaResult> =>
    runCapa(args, {
      cwd: workDir,
      env: { CAPA_GRPC_ADDR: ready.grpcAddress, CAPA_TENANT: "cli-test", CAPA_CREDENTIALS: ready.credentials.admin },
    });

  beforeAll(async () => {
    assertCliBuilt();
    workDir = mkdtempSync(join(tmpdir(), "capa-cli-up-"));
    up = startCapa(
      ["up", "--json", "--nats-port", "0", "--grpc-port", "0", "--http-port", "0", "--agents-per-region", "1"],
      {
        cwd: workDir,
      },
    );
    const child = up.child;
    ready = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`capa up exited ${child.exitCode}: ${up?.output().stderr}`);
        const line = up?.output().stdout.split("\n")[0];
        return line?.endsWith("}") ? (JSON.parse(line) as UpReady) : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100, what: "capa up to print its ready line" },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nstderr:\n${up?.output().stderr}`);
    });
  }, 120_000);

  afterAll(async () => {
    if (up && up.child.exitCode === null && up.child.signalCode === null) up.child.kill("SIGKILL");
    if (ready?.natsPid && processAlive(ready.natsPid)) process.kill(ready.natsPid, "SIGKILL");
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("reports its endpoints, its price source and one priced agent per region, with state under ./.capa", () => {
    expect(ready.natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(ready.grpcAddress).not.toBe("127.0.0.1:0");
    expect(ready.stateDir).toBe(join(workDir, ".capa"));
    expect(existsSync(join(workDir, ".capa", "nats"))).toBe(true);
    expect(ready.pricesSource).not.toBe("");
    expect(ready.agents.map((a) => a.region).sort()).toEqual(["eu-west", "us-east"]);
    for (const agent of ready.agents) {
      expect(agent.prices.length).toBeGreaterThan(0);
      expect(agent.prices.every((p) => Number.isSafeInteger(p.onDemandPerHour) && p.onDemandPerHour > 0)).toBe(true);
    }
  });

  it("serves the web console: its page in public, its data with capa up's admin key (the agents it started)", async () => {
    const page = await fetch(ready.consoleUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("capa console");
    const url = new URL("/api/v1/console/fleet", ready.consoleUrl);
    expect((await fetch(url)).status).toBe(401);
    const { token } = JSON.parse(readFileSync(ready.credentials.admin, "utf8")) as { token: string };
    const fleet = (await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      agents: { agentId: string }[];
    };
    expect(fleet.agents.map((a) => a.agentId).sort()).toEqual(ready.agents.map((a) => a.agentId).sort());
  });

  it("runs NATS with per-agent nkey users: seeds 0600 under nats-auth, anonymous clients refused", async () => {
    expect(ready.natsAuthDir).toBe(join(workDir, ".capa", "nats-auth"));
    for (const agent of ready.agents) {
      expect(statSync(join(ready.natsAuthDir, "agents", `${agent.agentId}.nk`)).mode & 0o777).toBe(0o600);
    }
    await expect(
      connectBus({ servers: ready.natsUrl, name: "anonymous", maxReconnectAttempts: 0, timeoutMs: 3_000 }),
    ).rejects.toThrow(/authorization|Authorization/);
  });

  it("submits a job, follows it to SUCCEEDED, shows its logs and lists it", async () => {
    const submitted = parseJsonOutput<{ job: JobView }>(
      await capa(["submit", "--json", "--gpus", "1", "--", "sh", "-c", "echo hi"]),
      "capa submit",
    );
    const jobId = submitted.job.id;
    expect(jobId).not.toBe("");

    const done = await waitFor(
      async () => {
        const job = parseJsonOutput<JobView>(await capa(["status", jobId, "--json"]), "capa status");
        if (job.state === "failed" || job.state === "cancelled") throw new Error(`job ended ${job.state}`);
        return job.state === "succeeded" ? job : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `job ${jobId} to succeed` },
    );
    expect(done.tasks).toHaveLength(1);
    expect(ready.agents.map((a) => a.agentId)).toContain(done.tasks[0]?.agentId);
    expect(done.tasks[0]?.gpuIndices).toHaveLength(1);
    expect(done.tasks[0]?.pricePerGpuHour).toBeGreaterThan(0);
    expect(done.tasks[0]?.exitCode).toBe(0);

    const logs = await waitFor(
      async () => {
        const answer = parseJsonOutput<{ lines: { stream: string; text: string }[] }>(
          await capa(["logs", jobId, "--json"]),
          "capa logs",
        );
        return answer.lines.some((l) => l.stream === "stdout" && l.text.includes("hi")) ? answer : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `the logs of ${jobId} to contain "hi"` },
    );
    expect(logs.lines.length).toBeGreaterThan(0);

    const listed = parseJsonOutput<{ jobs: JobView[] }>(await capa(["jobs", "--json"]), "capa jobs");
    expect(listed.jobs.map((j) => j.id)).toContain(jobId);

    const table = await capa(["status", jobId]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/SUCCEEDED/);
    expect(table.stdout).toMatch(/\$\d+\.\d{2}/);
  });

  it("serves Prometheus metrics by default: the scheduler's and one endpoint for its in-process agents", async () => {
    const scheduler = await (await fetch(ready.metricsUrls.scheduler)).text();
    expect(scheduler).toMatch(/^capa_gpus_total\{region="eu-west",gpu_model="H100-80GB"\} [1-9]/m);
    expect(scheduler).toMatch(/^capa_jobs\{state="succeeded"\} [1-9]/m);
    const agents = await (await fetch(ready.metricsUrls.agents)).text();
    for (const agent of ready.agents)
      expect(agents).toContain(`capa_agent_tasks_running{agent_id="${agent.agentId}",region="${agent.region}"}`);
  });

  it("rejects an invalid spec with a non-zero exit and one line naming the field", async () => {
    const result = await capa(["submit", "--json", "--gpus", "-1", "--", "true"]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^capa: invalid argument: .*spec\.gpus_per_replica/);
  });

  it("writes 0600 credentials; the tenant one acts for tenant default only; the admin one reads the audit trail", async () => {
    for (const path of [ready.credentials.admin, ready.credentials.tenant, ready.credentials.provider])
      expect((statSync(path).mode & 0o777).toString(8)).toBe("600");
    const asTenant = (args: string[]) =>
      runCapa(args, {
        cwd: workDir,
        env: { CAPA_GRPC_ADDR: ready.grpcAddress, CAPA_CREDENTIALS: ready.credentials.tenant },
      });
    const who = parseJsonOutput<{ role: string; tenant: string }>(
      await asTenant(["auth", "whoami", "--json"]),
      "whoami",
    );
    expect(who).toMatchObject({ role: "tenant", tenant: "default" });
    const submitted = parseJsonOutput<{ job: { id: string } }>(
      await asTenant(["submit", "--json", "--gpus", "0", "--", "true"]),
      "capa submit as tenant",
    );
    // The cli-test tenant's jobs (submitted by the admin above) are not the default tenant's.
    const listed = parseJsonOutput<{ jobs: { id: string }[] }>(await asTenant(["jobs", "--json"]), "capa jobs");
    expect(listed.jobs.map((j) => j.id)).toEqual([submitted.job.id]);
    const other = await asTenant(["--tenant", "cli-test", "jobs"]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/^capa: permission denied: /);
    const noCreds = await runCapa(["jobs"], {
      cwd: workDir,
      env: { CAPA_GRPC_ADDR: ready.grpcAddress, CAPA_CREDENTIALS: "", HOME: workDir },
    });
    expect(noCreds.stderr).toMatch(/^capa: unauthenticated: /);
    const audit = parseJsonOutput<{ method: string; actor: string; tenant: string }[]>(
      await runCapa(["audit", "--json", "--method", "SubmitJob", "--tenant", "default"], {
        cwd: workDir,
        env: { CAPA_GRPC_ADDR: ready.grpcAddress, CAPA_CREDENTIALS: ready.credentials.admin },
      }),
      "capa audit",
    );
    expect(audit.some((e) => e.tenant === "default" && e.actor === "capa-up-tenant")).toBe(true);
    const denied = await asTenant(["audit"]);
    expect(denied.stderr).toMatch(/^capa: permission denied: /);
  });

  it("stops everything it started on SIGINT and exits 0", async () => {
    const child = up!.child;
    expect(processAlive(ready.natsPid)).toBe(true);
    child.kill("SIGINT");
    const exit = await exited(child);
    expect({ exit, stderr: exit.code === 0 ? "" : up!.output().stderr }).toEqual({
      exit: { code: 0, signal: null },
      stderr: "",
    });
    await waitFor(() => !processAlive(ready.natsPid), { timeoutMs: 10_000, what: "nats-server to be gone" });
  }, 60_000);
});
