/**
 * Helpers for the marketplace suites: real agents (@capa/agent, simulated GPUs) started beside a scheduler
 * harness, typed wrappers for the market and billing RPCs, and waits on job state.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { parseUsd } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { getJob, type Harness, rpc, silent, stateName } from "./scheduler-harness.js";

export interface MarketAgentDef {
  agentId: string;
  region: string;
  /** Dollars per GPU-hour, on-demand (and interruptible). */
  h100: string;
  h100Interruptible?: string;
  gpus?: number;
  provider?: string;
}

export interface MarketAgents {
  handles: Map<string, AgentHandle>;
  workDir: string;
  stop(): Promise<void>;
}

export async function startMarketAgents(h: Harness, defs: MarketAgentDef[]): Promise<MarketAgents> {
  const workDir = mkdtempSync(join(tmpdir(), "capa-market-"));
  const handles = new Map<string, AgentHandle>();
  for (const d of defs) {
    const handle = await startAgent({
      ...(await h.agentNats(d.agentId, d.region)),
      agentId: d.agentId,
      region: d.region,
      prices: [
        {
          gpuModel: "H100-80GB",
          onDemandPerHour: parseUsd(d.h100),
          interruptiblePerHour: d.h100Interruptible ? parseUsd(d.h100Interruptible) : 0,
        },
      ],
      simulateGpus: `${d.gpus ?? 2}xH100-80GB`,
      ...(d.provider ? { provider: d.provider } : {}),
      workDir: join(workDir, d.agentId),
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      advertTtlSeconds: 10,
      usageIntervalMs: 500,
      logger: silent,
    });
    handles.set(d.agentId, handle);
  }
  await waitFor(
    async () => {
      const r = await rpc<pb.ListAgentsResponse>((cb) =>
        h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
      );
      return defs.every((d) => r.agents.some((a) => a.agentId === d.agentId && a.status === "ready"));
    },
    { what: "every market agent registered" },
  );
  return {
    handles,
    workDir,
    async stop() {
      for (const a of handles.values()) await a.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export function listOffers(h: Harness, req: Partial<pb.ListOffersRequest>): Promise<pb.ListOffersResponse> {
  return rpc((cb) => h.jobs.listOffers(pb.ListOffersRequest.fromPartial(req), cb));
}

export function quote(h: Harness, spec: pb.JobSpec, tenant = "acme"): Promise<pb.QuoteResponse> {
  return rpc((cb) => h.jobs.quote({ tenant, spec }, cb));
}

export function invoice(h: Harness, tenant: string, jobId = ""): Promise<pb.GetInvoiceResponse> {
  return rpc((cb) => h.billing.getInvoice({ tenant, fromUnixMs: 0, toUnixMs: 0, jobId }, cb));
}

export async function waitForState(h: Harness, jobId: string, ...states: string[]): Promise<pb.Job> {
  return waitFor(
    async () => {
      const job = await getJob(h, jobId);
      return states.includes(stateName(job.state)) && job;
    },
    { what: `job ${jobId} ${states.join(" or ")}`, timeoutMs: 30_000 },
  );
}

export async function cancelAndWait(h: Harness, jobId: string): Promise<pb.Job> {
  await rpc((cb) => h.jobs.cancelJob({ jobId, reason: "test cleanup" }, cb));
  return waitForState(h, jobId, "CANCELLED", "SUCCEEDED", "FAILED");
}

/** Reads a counter's samples from the scheduler's Prometheus endpoint: label value → count. */
export async function counter(h: Harness, name: string, label: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${h.scheduler.metricsAddress}/metrics`)).text();
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{${label}="([^"]*)"\\} (\\d+)`, "gm");
  for (const m of text.matchAll(re)) out.set(m[1]!, Number(m[2]));
  return out;
}
