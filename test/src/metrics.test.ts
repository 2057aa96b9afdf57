/**
 * Metrics as Prometheus sees them: a real scheduler (metrics port on) and a real `capa agent` child process
 * (`--metrics-port`) are scraped over HTTP while a job runs and after it ends, and both expositions are parsed
 * with a real Prometheus text-format parser. The values are checked against what happened (one GPU busy, one
 * job running then cancelled, its charge in dollars equal to the job's spend from the ledger), no label names a
 * tenant, and every query of the shipped Grafana dashboard reads a metric one of the two endpoints exposes.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, exited, REPO_ROOT, startCapa } from "./cli-harness.js";
import { familyOf, metricNamesIn, type ParsedFamily, scrape, sumOf } from "./metrics-support.js";
import { finalJob, getJob, type Harness, rpc, spec, startHarness, stateName, submit } from "./scheduler-harness.js";

const REGION = "eu-west";
const AGENT = "metrics-agent";
const TENANT = "acme";

describe("metrics: scheduler and agent expositions, parsed", () => {
  let h: Harness;
  let agent: { child: ChildProcess; output: () => { stdout: string; stderr: string } } | undefined;
  let agentAddress = "";
  let workDir = "";
  const seen = { scheduler: new Map<string, ParsedFamily>(), agent: new Map<string, ParsedFamily>() };

  beforeAll(async () => {
    assertCliBuilt();
    h = await startHarness({ metricsPort: 0 });
    workDir = mkdtempSync(join(tmpdir(), "capa-metrics-agent-"));
    const { seedFile } = await h.enrollAgent(AGENT, REGION);
    agent = startCapa([
      "agent",
      ...["--nats-url", h.nats.url, "--nats-nkey", seedFile, "--id", AGENT, "--region", REGION],
      ...["--simulate-gpus", "2xH100-80GB", "--price", "H100-80GB=3.60", "--work-dir", workDir],
      ...["--heartbeat-interval", "300ms", "--advert-interval", "1s", "--container-runtime", "none"],
      ...["--metrics-port", "0", "--log-level", "warn"],
    ]);
    agentAddress = await waitFor(
      () => {
        if (agent!.child.exitCode !== null) throw new Error(`capa agent exited: ${agent!.output().stderr}`);
        return /metrics on http:\/\/([^/\s]+)\/metrics/.exec(agent!.output().stderr)?.[1];
      },
      { timeoutMs: 30_000, what: "capa agent printing its metrics address" },
    );
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return r.agents.some((a) => a.agentId === AGENT);
      },
      { timeoutMs: 30_000, what: "the scheduler listing the agent" },
    );
  });

  afterAll(async () => {
    if (agent && agent.child.exitCode === null) {
      agent.child.kill("SIGTERM");
      await exited(agent.child);
    }
    await h?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  const schedulerScrape = async () => {
    const s = await scrape(h.scheduler.metricsAddress!);
    for (const [name, f] of s.families) seen.scheduler.set(name, f);
    return s;
  };
  const agentScrape = async () => {
    const s = await scrape(agentAddress);
    for (const [name, f] of s.families) seen.agent.set(name, f);
    return s;
  };

  it("shows a running job on both sides: jobs by state, free GPUs, the busy GPU, latency histograms", async () => {
    const jobId = (await submit(h, spec({ gpusPerReplica: 1 }, ["sleep", "60"]), { tenant: TENANT })).job!.id;
    await waitFor(async () => stateName((await getJob(h, jobId)).state) === "RUNNING", {
      timeoutMs: 30_000,
      what: "the job running",
    });
    const s = await waitFor(
      async () => {
        const scraped = await schedulerScrape();
        return sumOf(scraped, "capa_job_submit_to_running_seconds") === 1 && scraped;
      },
      { timeoutMs: 20_000, what: "the leader observing submit→running" },
    );
    expect(sumOf(s, "capa_jobs", { state: "running" })).toBe(1);
    expect(sumOf(s, "capa_jobs", { state: "pending" })).toBe(0);
    expect(sumOf(s, "capa_gpus_total", { region: REGION, gpu_model: "H100-80GB" })).toBe(2);
    expect(sumOf(s, "capa_gpus_free", { region: REGION, gpu_model: "H100-80GB" })).toBe(1);
    expect(sumOf(s, "capa_scheduler_leader")).toBe(1);
    expect(s.families.get("capa_job_submit_to_running_seconds")?.type).toBe("HISTOGRAM");
    expect(s.families.get("capa_grpc_request_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(sumOf(s, "capa_grpc_request_duration_seconds", { method: "JobService/SubmitJob", code: "OK" })).toBe(1);
    expect(s.families.get("process_cpu_seconds_total")?.type).toBe("COUNTER");
    expect(s.families.has("nodejs_eventloop_lag_p99_seconds")).toBe(true);

    const a = await waitFor(
      async () => {
        const scraped = await agentScrape();
        return sumOf(scraped, "capa_agent_tasks_running") === 1 && scraped;
      },
      { timeoutMs: 20_000, what: "the agent's metrics showing the task" },
    );
    const util = a.families.get("capa_agent_gpu_utilization_ratio")!;
    expect(util.metrics).toHaveLength(2);
    expect(util.metrics.map((m) => Number(m.value)).sort()).toEqual([0, 1]);
    for (const m of util.metrics)
      expect(m.labels).toMatchObject({ agent_id: AGENT, region: REGION, gpu_model: "H100-80GB" });
    expect(sumOf(a, "capa_agent_gpu_memory_total_bytes")).toBe(2 * 80 * 1024 * 1024 * 1024);
    expect(sumOf(a, "capa_agent_gpu_memory_used_bytes")).toBeGreaterThan(0);
    const temps = a.families.get("capa_agent_gpu_temperature_celsius")!.metrics.map((m) => Number(m.value));
    expect(Math.max(...temps)).toBeGreaterThan(Math.min(...temps));
    expect(sumOf(a, "capa_agent_tasks_started_total")).toBe(1);
    // starting and running were acknowledged by JetStream: the lag histogram has counted them.
    expect(sumOf(a, "capa_agent_report_lag_seconds", { kind: "status" })).toBeGreaterThanOrEqual(1);
    expect(a.families.get("process_resident_memory_bytes")?.type).toBe("GAUGE");

    await rpc((cb) => h.jobs.cancelJob({ jobId, reason: "metrics test done" }, cb));
    const job = await finalJob(h, jobId);
    expect(stateName(job.state)).toBe("CANCELLED");
  });

  it("reports billing in dollars from the ledger: charged = the tenant's invoice = fees + payouts", async () => {
    // The cancelled job's allocation is settled after the cancel answered: wait for its charge in the ledger.
    const invoiced = await waitFor(
      async () => {
        const inv = await rpc<pb.GetInvoiceResponse>((cb) =>
          h.billing.getInvoice({ tenant: TENANT, fromUnixMs: 0, toUnixMs: Date.now() + 3_600_000, jobId: "" }, cb),
        );
        return Number(inv.totalMicros) > 0 && Number(inv.totalMicros);
      },
      { timeoutMs: 30_000, what: "the cancelled job's charge in the ledger" },
    );
    const s = await waitFor(
      async () => {
        const scraped = await schedulerScrape();
        return sumOf(scraped, "capa_billing_charged_dollars_total") > 0 && scraped;
      },
      { timeoutMs: 30_000, what: "the charge in the billing metrics" },
    );
    const charged = sumOf(s, "capa_billing_charged_dollars_total", { region: REGION, gpu_model: "H100-80GB" });
    const fees = sumOf(s, "capa_billing_fees_dollars_total");
    const payouts = sumOf(s, "capa_billing_payouts_dollars_total");
    expect(charged).toBeCloseTo(invoiced / 1_000_000, 6);
    expect(fees + payouts).toBeCloseTo(charged, 6);
    expect(fees).toBeGreaterThan(0);
    expect(s.families.get("capa_billing_charged_dollars_total")?.type).toBe("COUNTER");
  });

  it("names no tenant, provider, job or task in any label or value", async () => {
    for (const { text, families } of [await schedulerScrape(), await agentScrape()]) {
      expect(text).not.toContain(TENANT);
      for (const family of families.values())
        for (const m of family.metrics)
          for (const label of Object.keys(m.labels ?? {}))
            expect(["tenant", "provider", "job_id", "task_id", "key_id", "actor"]).not.toContain(label);
    }
  });

  it("every query of the Grafana dashboard reads a metric the scheduler or the agent exposes", async () => {
    await schedulerScrape();
    await agentScrape();
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "docker/grafana/capa-dashboard.json"), "utf8")) as {
      panels: { title: string; type: string; targets?: { expr: string }[] }[];
    };
    const exposed = new Set([...seen.scheduler.keys(), ...seen.agent.keys()]);
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const q of queries) {
      const names = metricNamesIn(q.expr);
      expect(names.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      for (const name of names) if (!familyOf(name, exposed)) missing.push(`${q.panel}: ${name}`);
    }
    expect(missing).toEqual([]);
    // Every capa family the parser saw was declared (HELP and TYPE), not just sample lines.
    for (const f of [...seen.scheduler.values(), ...seen.agent.values()])
      if (f.name.startsWith("capa_")) expect([f.name, f.help.length > 0, f.type]).not.toContain("UNTYPED");
  });
});
