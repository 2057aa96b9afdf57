/// <reference lib="dom" />
/**
 * The web console in a real headless Chromium against a real scheduler (HTTP edge, gRPC, nats-server) and a real
 * agent running real child processes: the page signs in with an API key, shows the agent and the jobs, and updates
 * by itself when a job finishes. Screenshots are kept in test/artifacts/console/.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as pb from "@capa/api";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactsDir, type Browser, launchChromium } from "./browser.js";
import { type Harness, rpc, spec, startHarness } from "./scheduler-harness.js";
import { type MarketAgents, startMarketAgents } from "./scheduler-market.js";

const AGENT_ID = "console-agent-1";
/** Under load a refresh cycle (2 s) can be slow: wait for page conditions generously. */
const PAGE_WAIT = { timeout: 45_000 };
/** Each test waits on several page conditions in turn. */
const TEST_TIMEOUT = 180_000;

describe("web console in Chromium", { timeout: TEST_TIMEOUT }, () => {
  let h: Harness;
  let agents: MarketAgents;
  let browser: Browser;
  let workDir: string;
  let operatorKey: string;
  const shots = artifactsDir("console");

  beforeAll(async () => {
    h = await startHarness();
    agents = await startMarketAgents(h, [
      { agentId: AGENT_ID, region: "eu-west", h100: "2.49", h100Interruptible: "1.20", gpus: 4, provider: "gpuco" },
    ]);
    workDir = agents.workDir;
    operatorKey = await h.mintKey("operator", { name: "console-operator" });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await agents?.stop();
    await h?.stop();
  });

  async function signIn(key: string): Promise<Page> {
    const page = await browser.context.newPage();
    const response = await page.goto(`${h.scheduler.httpUrl}/console/`);
    expect(response?.status()).toBe(200);
    await page.fill("#api-key", key);
    await page.click("#sign-in-form button[type=submit]");
    await page.waitForSelector("#views:not([hidden])", PAGE_WAIT);
    return page;
  }

  /** A job that runs until its release file exists, so the test decides when it finishes. */
  function holdingJob(tenantClients: Awaited<ReturnType<Harness["asTenant"]>>, name: string, release: string) {
    return rpc<pb.SubmitJobResponse>((cb) =>
      tenantClients.jobs.submitJob(
        {
          requestId: "",
          tenant: "",
          spec: spec({ name, gpusPerReplica: 2 }, [
            "sh",
            "-c",
            `while [ ! -f ${release} ]; do sleep 0.1; done; echo done`,
          ]),
        },
        cb,
      ),
    );
  }

  it("shows the agent and a running job, and moves the job to finished when it ends", async () => {
    const acme = await h.asTenant("acme");
    const release = join(workDir, "release-train");
    const { job } = await holdingJob(acme, "console-train", release);
    const jobId = job!.id;
    // A job no agent can hold (8 GPUs on a 4-GPU fleet) waits in the queue with its reason.
    const big = await rpc<pb.SubmitJobResponse>((cb) =>
      acme.jobs.submitJob({ requestId: "", tenant: "", spec: spec({ name: "too-big", gpusPerReplica: 8 }) }, cb),
    );

    const page = await signIn(operatorKey);
    expect(await page.textContent("#who")).toContain("operator");
    // The fleet: the agent's row, and the region/model cell with its GPUs (2 of 4 taken by the job once it runs).
    await page.waitForSelector(`#agents tr[data-agent-id="${AGENT_ID}"][data-status="ready"]`, PAGE_WAIT);
    await page.waitForSelector('#fleet tr[data-region="eu-west"][data-model="H100-80GB"]', PAGE_WAIT);
    // The job, running on the agent.
    const running = await page.waitForSelector(`#running tr[data-job-id="${jobId}"]`, PAGE_WAIT);
    expect(await running.textContent()).toContain(AGENT_ID);
    await page.waitForSelector('#fleet tr[data-region="eu-west"][data-model="H100-80GB"][data-free="2"]', PAGE_WAIT);
    // Its reason is the planner's, once it has tried: the row's last cell stops being empty ("-").
    const reason = await page.waitForFunction(
      (id) => {
        const text = document.querySelector(`#queue tr[data-job-id="${id}"] td:last-child`)?.textContent ?? "";
        return text.length > 1 ? text : false;
      },
      big.job!.id,
      PAGE_WAIT,
    );
    expect(await reason.jsonValue()).toMatch(/GPU|agent/i);
    // Its placement decision with the explanation.
    const decision = await page.waitForSelector(`#decisions details[data-job-id="${jobId}"]`, PAGE_WAIT);
    expect(await decision.textContent()).toContain(AGENT_ID);
    await page.screenshot({ path: join(shots, "console-running.png"), fullPage: true });

    // The job finishes; the page picks it up on its own refresh, without a reload.
    writeFileSync(release, "");
    await page.waitForSelector(`#recent tr[data-job-id="${jobId}"][data-state="succeeded"]`, PAGE_WAIT);
    expect(await page.$(`#running tr[data-job-id="${jobId}"]`)).toBeNull();
    await page.waitForSelector('#fleet tr[data-region="eu-west"][data-model="H100-80GB"][data-free="4"]', PAGE_WAIT);
    await page.screenshot({ path: join(shots, "console-finished.png"), fullPage: true });

    // Spend and earnings charts, once the finished allocation is settled into the ledger.
    await page.click('#tabs button[data-tab="money"]');
    await page.waitForFunction(
      () => document.querySelector("#spend-total")?.textContent?.includes("acme"),
      null,
      PAGE_WAIT,
    );
    await page.waitForSelector("#spend-chart svg", PAGE_WAIT);
    await page.waitForSelector("#earnings-chart svg", PAGE_WAIT);
    await page.screenshot({ path: join(shots, "console-money.png"), fullPage: true });

    // The active policy.
    await page.click('#tabs button[data-tab="policy"]');
    await page.waitForFunction(
      () => (document.querySelector("#policy-meta")?.textContent ?? "").includes("profile"),
      null,
      PAGE_WAIT,
    );
    expect(await page.textContent("#policy-json")).toContain("weights");
    await page.close();
  });

  it("shows a tenant only its own jobs, and hides the operator views", async () => {
    const acme = await h.asTenant("acme");
    const globex = await h.asTenant("globex");
    const mine = (await holdingJob(acme, "mine", join(workDir, "release-mine"))).job!.id;
    const theirs = (await holdingJob(globex, "theirs", join(workDir, "release-theirs"))).job!.id;
    const acmeKey = await h.mintKey("tenant", { tenant: "acme", name: "console-acme" });

    const page = await signIn(acmeKey);
    expect(await page.textContent("#who")).toContain("tenant acme");
    await page.waitForSelector(`tr[data-job-id="${mine}"]`, PAGE_WAIT);
    // One refresh cycle later the other tenant's job is still absent.
    const refreshed = Number(await page.getAttribute("body", "data-refreshed"));
    await page.waitForFunction((t) => Number(document.body.dataset.refreshed) > t, refreshed, PAGE_WAIT);
    expect(await page.$(`tr[data-job-id="${theirs}"]`)).toBeNull();
    expect(await page.isHidden("#agents-block")).toBe(true);
    expect(await page.isHidden('#tabs button[data-tab="policy"]')).toBe(true);
    await page.screenshot({ path: join(shots, "console-tenant.png"), fullPage: true });
    writeFileSync(join(workDir, "release-mine"), "");
    writeFileSync(join(workDir, "release-theirs"), "");
    await page.close();
  });

  it("compares policies on an uploaded trace in the replay view (OperatorService.Replay's engine)", async () => {
    const rows = ["job_id,submit_s,duration_s,gpus,gpu_model,kind"];
    for (let i = 0; i < 60; i++) rows.push(`j${i},${i * 120},${1800 + (i % 4) * 900},${1 + (i % 2)},,batch`);
    const page = await signIn(operatorKey);
    await page.click('#tabs button[data-tab="replay"]');
    await page.fill("#replay-trace", rows.join("\n"));
    await page.fill("#replay-agents", "20");
    await page.fill("#replay-profiles", "balanced");
    await page.click("#replay-form button[type=submit]");
    await page.waitForSelector('#replay-table tr[data-policy="active"]', PAGE_WAIT);
    for (const policy of ["balanced", "first-fit", "random", "spread", "cheapest-single-region"])
      expect(await page.$(`#replay-table tr[data-policy="${policy}"]`), policy).not.toBeNull();
    await page.waitForSelector("#replay-chart svg", PAGE_WAIT);
    expect(await page.textContent("#replay-status")).toMatch(/replayed 60 jobs over 20 agents/);
    await page.screenshot({ path: join(shots, "console-replay.png"), fullPage: true });

    // A bad row is named by line and column on the page.
    await page.fill("#replay-trace", "job_id,submit_s,duration_s,gpus,gpu_model,kind\nj1,0,-1,1,,batch");
    await page.click("#replay-form button[type=submit]");
    await page.waitForFunction(
      () => (document.querySelector("#replay-status")?.textContent ?? "").includes("line 2, column 3"),
      null,
      PAGE_WAIT,
    );
    await page.close();
  });

  it("refuses a bad key on the sign-in form", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${h.scheduler.httpUrl}/console/`);
    await page.fill("#api-key", "capa_0011223344556677_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    await page.click("#sign-in-form button[type=submit]");
    await page.waitForFunction(
      () => (document.querySelector("#sign-in-error")?.textContent ?? "").length > 0,
      null,
      PAGE_WAIT,
    );
    expect(await page.isHidden("#views")).toBe(true);
    await page.close();
  });
});
