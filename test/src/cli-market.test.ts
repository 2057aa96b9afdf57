/**
 * The marketplace verbs end to end: `capa up` (real nats-server, scheduler with ledger and signing key, one
 * simulated agent per region) as a child process, then `capa quote`, `offers`, a short job, `bill`, `earnings`,
 * `receipt get/list/verify`, `tenant limits` and `agent price set/get` against it as separate processes, the
 * way people and scripts run them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { costForGpuMillis } from "@capa/domain";
import { generateSigningKey } from "@capa/ledger";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertCliBuilt,
  type CapaResult,
  exited,
  killCapaUp,
  parseJsonOutput,
  type RunningUp,
  runCapa,
  startCapaUp,
} from "./cli-harness.js";

const TENANT = "cli-market";
const H100 = "H100-80GB";

interface QuoteJson {
  feasibleOffers: number;
  regions: { region: string; gpuModel: string; offers: number; freeGpus: number; cheapestMicrosPerGpuHour: number }[];
  estimatedHourlyMicros: number;
  estimatedTotalMicros: number;
  estimatedStartUnixMs: number;
  reason: string;
  startBasis: string;
  startDetail: string;
  queuedAhead: number;
}

interface OfferJson {
  region: string;
  gpuModel: string;
  agents: number;
  totalGpus: number;
  freeGpus: number;
  minMicrosPerGpuHour: number;
  medianMicrosPerGpuHour: number;
  freshestAdvertAgeMs: number;
}

interface ChargeJson {
  kind: string;
  jobId: string;
  taskId: string;
  agentId: string;
  gpuIndices: number[];
  gpuMilliseconds: number;
  priceMicrosPerGpuHour: number;
  amountMicros: number;
  receiptId: string;
}

interface InvoiceJson {
  tenant: string;
  totalMicros: number;
  lines: { jobId: string; allocations: number; amountMicros: number; charges: ChargeJson[] }[];
}

interface ReceiptJson {
  receiptId: string;
  jobId: string;
  taskId: string;
  tenant: string;
  agentId: string;
  amount: number;
  fee: number;
  payout: number;
  signature: string;
  keyId: string;
}

interface JobView {
  id: string;
  state: string;
  tasks: { id: string; agentId: string; region: string; gpuIndices: number[]; pricePerGpuHour: number }[];
}

describe("capa up, then the marketplace verbs against it", () => {
  let workDir: string;
  let up: RunningUp | undefined;
  const capa = (args: string[]): Promise<CapaResult> =>
    runCapa(args, {
      cwd: workDir,
      env: {
        CAPA_GRPC_ADDR: up!.ready.grpcAddress,
        CAPA_NATS_URL: up!.ready.natsUrl,
        CAPA_TENANT: TENANT,
        CAPA_CREDENTIALS: up!.ready.credentials.admin,
      },
    });
  const h100Price = (region: string): number => {
    const agent = up!.ready.agents.find((a) => a.region === region);
    const price = agent?.prices.find((p) => p.gpuModel === H100)?.onDemandPerHour;
    if (!price) throw new Error(`capa up gave no ${H100} price in ${region}`);
    return price;
  };

  beforeAll(async () => {
    assertCliBuilt();
    workDir = mkdtempSync(join(tmpdir(), "capa-cli-market-"));
    up = await startCapaUp(workDir);
  }, 120_000);

  afterAll(async () => {
    if (up && up.child.exitCode === null && up.child.signalCode === null) {
      up.child.kill("SIGINT");
      await Promise.race([exited(up.child), new Promise((r) => setTimeout(r, 30_000))]);
    }
    killCapaUp(up);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  }, 60_000);

  it("quotes 2 H100s for 1h at the cheapest region's price, startable now", async () => {
    const q = parseJsonOutput<QuoteJson>(
      await capa(["quote", "--json", "--gpus", "2", "--gpu-model", H100, "--duration", "1h"]),
      "capa quote",
    );
    const cheapest = Math.min(h100Price("eu-west"), h100Price("us-east"));
    expect(q.reason).toBe("");
    expect(q.feasibleOffers).toBe(2);
    expect(q.regions.map((r) => r.gpuModel)).toEqual([H100, H100]);
    expect(q.regions[0]?.cheapestMicrosPerGpuHour).toBe(cheapest);
    expect(q.estimatedHourlyMicros).toBe(2 * cheapest);
    expect(q.estimatedTotalMicros).toBe(2 * cheapest);
    expect(q.estimatedStartUnixMs).toBeGreaterThan(0);
    // The start basis round-trips: an idle fleet with nothing queued fits it now.
    expect([q.startBasis, q.queuedAhead]).toEqual(["free-now", 0]);
    expect(typeof q.startDetail).toBe("string");

    const table = await capa(["quote", "--gpus", "2", "--gpu-model", H100, "--duration", "1h"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^could start:\s+now$/m);
    expect(table.stdout).toMatch(/^estimated total:\s+\$\d+\.\d+ for 1h$/m);
  });

  it("quotes nothing under an impossible price cap, with the reason, and still exits 0", async () => {
    const q = parseJsonOutput<QuoteJson>(
      await capa(["quote", "--json", "--gpus", "1", "--max-price", "0.01"]),
      "capa quote --max-price",
    );
    expect(q.feasibleOffers).toBe(0);
    expect(q.reason).toMatch(/^no offer at or below \$0\.01\/GPU-h; cheapest is /);
    const table = await capa(["quote", "--gpus", "1", "--max-price", "0.01"]);
    expect(table.stdout).toMatch(/^nothing fits:\s+no offer at or below \$0\.01\/GPU-h/m);
  });

  it("lists the order book of the regions matching a glob, cheapest first", async () => {
    const { offers } = parseJsonOutput<{ offers: OfferJson[] }>(
      await capa(["offers", "--json", "--region", "eu-*"]),
      "capa offers",
    );
    expect(offers.length).toBeGreaterThan(0);
    expect(new Set(offers.map((o) => o.region))).toEqual(new Set(["eu-west"]));
    const h100 = offers.find((o) => o.gpuModel === H100);
    expect(h100).toMatchObject({ agents: 1, totalGpus: 4, minMicrosPerGpuHour: h100Price("eu-west") });
    const prices = offers.map((o) => o.minMicrosPerGpuHour);
    expect(prices).toEqual([...prices].sort((a, b) => a - b));

    const table = await capa(["offers", "--region", "eu-*", "--sort", "-price"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("eu-west");
    expect(table.stdout).not.toContain("us-east");
    const bad = await capa(["offers", "--sort", "cheap"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/use one of price, free, region, model, vram, age/);
  });

  it("charges a finished job: bill, earnings and a receipt that verifies (and a tampered one that does not)", async () => {
    const submitted = parseJsonOutput<{ job: JobView }>(
      await capa(["submit", "--json", "--gpus", "1", "--gpu-model", H100, "--", "sh", "-c", "sleep 1"]),
      "capa submit",
    );
    const jobId = submitted.job.id;
    const job = await waitFor(
      async () => {
        const view = parseJsonOutput<JobView>(await capa(["status", jobId, "--json"]), "capa status");
        if (view.state === "failed" || view.state === "cancelled") throw new Error(`job ended ${view.state}`);
        return view.state === "succeeded" ? view : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `job ${jobId} to succeed` },
    );
    const task = job.tasks[0]!;

    // Settlement follows the final state: wait for the charge to be in the ledger.
    const invoice = await waitFor(
      async () => {
        const answer = parseJsonOutput<InvoiceJson>(await capa(["bill", "--json"]), "capa bill");
        return answer.lines.some((l) => l.jobId === jobId) ? answer : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `a charge for ${jobId} on the invoice` },
    );
    expect(invoice.tenant).toBe(TENANT);
    const line = invoice.lines.find((l) => l.jobId === jobId)!;
    expect(line.allocations).toBe(1);
    const charge = line.charges[0]!;
    expect(charge).toMatchObject({ kind: "charge", taskId: task.id, agentId: task.agentId });
    expect(charge.priceMicrosPerGpuHour).toBe(task.pricePerGpuHour);
    expect(charge.gpuMilliseconds).toBeGreaterThan(0);
    expect(charge.amountMicros).toBeGreaterThan(0);
    expect(charge.amountMicros).toBe(costForGpuMillis(charge.priceMicrosPerGpuHour, charge.gpuMilliseconds));
    expect(invoice.totalMicros).toBe(invoice.lines.reduce((n, l) => n + l.amountMicros, 0));

    const forJob = parseJsonOutput<InvoiceJson>(await capa(["bill", "--json", "--job", jobId]), "capa bill --job");
    expect(forJob.lines.map((l) => l.jobId)).toEqual([jobId]);
    const empty = parseJsonOutput<InvoiceJson>(
      await capa(["bill", "--json", "--to", "2020-01-01"]),
      "capa bill --to 2020",
    );
    expect(empty.lines).toEqual([]);
    const table = await capa(["bill"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${jobId}\\s+${task.id}\\s+${task.agentId}\\s+1x${H100}`, "m"));
    expect(table.stdout).toMatch(/^TOTAL\s/m);

    const earnings = parseJsonOutput<{
      lines: { taskId: string; grossMicros: number; feeMicros: number; payoutMicros: number }[];
    }>(await capa(["earnings", "--json", "--agent", task.agentId]), "capa earnings");
    const earned = earnings.lines.find((l) => l.taskId === task.id)!;
    expect(earned.grossMicros).toBe(charge.amountMicros);
    expect(earned.feeMicros + earned.payoutMicros).toBe(earned.grossMicros);

    const { receipts } = parseJsonOutput<{ receipts: ReceiptJson[] }>(
      await capa(["receipt", "list", "--json", "--job", jobId]),
      "capa receipt list",
    );
    expect(receipts).toHaveLength(1);
    const receiptId = receipts[0]!.receiptId;
    expect(receiptId).toBe(charge.receiptId);

    const file = join(workDir, "receipt.json");
    const got = await capa(["receipt", "get", receiptId, "-o", file]);
    expect(got.code).toBe(0);
    const receipt = JSON.parse(readFileSync(file, "utf8")) as ReceiptJson;
    expect(receipt).toMatchObject({ receiptId, jobId, taskId: task.id, tenant: TENANT, amount: charge.amountMicros });

    const valid = await capa(["receipt", "verify", file]);
    expect({ code: valid.code, stderr: valid.stderr }).toEqual({ code: 0, stderr: "" });
    expect(valid.stdout).toMatch(new RegExp(`^valid: receipt ${receiptId} signed by key ${receipt.keyId}`));

    // Offline, with the public key capa up's scheduler wrote next to its signing key.
    const publicKey = join(up!.ready.stateDir, "scheduler", "receipt-signing-key.pem.pub");
    const offline = await capa(["receipt", "verify", file, "--key", publicKey]);
    expect(offline.code).toBe(0);

    const tampered = join(workDir, "tampered.json");
    writeFileSync(tampered, JSON.stringify({ ...receipt, amount: receipt.amount + 1, payout: receipt.payout + 1 }));
    const bad = await capa(["receipt", "verify", tampered]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      `capa: receipt ${receiptId} is NOT valid: bad-signature: signature does not match the receipt's contents\n`,
    );

    const otherKey = join(workDir, "other.pub");
    writeFileSync(otherKey, generateSigningKey().publicKeyPem);
    const wrongKey = await capa(["receipt", "verify", file, "--key", otherKey]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/NOT valid: bad-signature: signed by key/);

    const missing = await capa(["receipt", "verify", join(workDir, "missing.json")]);
    // Could not check = a runtime failure (1); 2 is only for a command line that cannot be run as given.
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^capa: cannot read /);

    const limits = parseJsonOutput<{ limits: { monthlyCapMicros: number }; monthSettledMicros: number }>(
      await capa(["tenant", "limits", "set", "--monthly", "100", "--json"]),
      "capa tenant limits set",
    );
    expect(limits.limits.monthlyCapMicros).toBe(100_000_000);
    expect(limits.monthSettledMicros).toBeGreaterThanOrEqual(charge.amountMicros);
  }, 180_000);

  it("keeps the other cap when one is set, two partial sets of different caps both survive, and 0 removes a cap", async () => {
    type Limits = {
      limits: { hourlyCapMicros: number; monthlyCapMicros: number; updatedBy: string; updatedAtUnixMs: number };
    };
    const first = parseJsonOutput<Limits>(
      await capa(["tenant", "limits", "set", "--hourly", "10", "--monthly", "500", "--actor", "alice", "--json"]),
      "limits set",
    );
    expect(first.limits).toMatchObject({
      hourlyCapMicros: 10_000_000,
      monthlyCapMicros: 500_000_000,
      updatedBy: "alice",
    });
    // Two CLIs at once, each naming one cap: neither reverts the other's.
    const [hourly, monthly] = await Promise.all([
      capa(["tenant", "limits", "set", "--hourly", "20", "--actor", "bob"]),
      capa(["tenant", "limits", "set", "--monthly", "600", "--actor", "carol"]),
    ]);
    expect([hourly.code, monthly.code]).toEqual([0, 0]);
    const both = parseJsonOutput<Limits>(await capa(["tenant", "limits", "get", "--json"]), "limits get");
    expect(both.limits).toMatchObject({ hourlyCapMicros: 20_000_000, monthlyCapMicros: 600_000_000 });
    expect(["bob", "carol"]).toContain(both.limits.updatedBy);
    expect(both.limits.updatedAtUnixMs).toBeGreaterThan(0);
    const second = parseJsonOutput<Limits>(
      await capa(["tenant", "limits", "set", "--hourly", "0", "--actor", "dave", "--json"]),
      "limits set --hourly 0",
    );
    expect(second.limits).toMatchObject({ hourlyCapMicros: 0, monthlyCapMicros: 600_000_000, updatedBy: "dave" });
    const table = await capa(["tenant", "limits", "get"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^hourly cap:\s+none$/m);
    expect(table.stdout).toMatch(/^monthly cap:\s+\$600\.00$/m);
    expect(table.stdout).toMatch(/^updated:\s+\S+ ago by dave$/m);
  });

  it("changes a running agent's price over NATS; the order book and agent price get show it", async () => {
    const agent = up!.ready.agents.find((a) => a.region === "eu-west")!;
    const set = parseJsonOutput<{
      prices: { gpuModel: string; onDemandPerHour: number; interruptiblePerHour: number }[];
    }>(
      await capa([
        "agent",
        "price",
        "set",
        "--json",
        "--agent",
        agent.agentId,
        "--region",
        "eu-west",
        "--nats-nkey",
        join(up!.ready.natsAuthDir, "agents", `${agent.agentId}.nk`),
        "h100=1.23/0.5",
      ]),
      "capa agent price set",
    );
    expect(set.prices.find((p) => p.gpuModel === H100)).toEqual({
      gpuModel: H100,
      onDemandPerHour: 1_230_000,
      interruptiblePerHour: 500_000,
    });
    // The other models keep their prices.
    expect(set.prices.length).toBe(agent.prices.length);

    await waitFor(
      async () => {
        const { offers } = parseJsonOutput<{ offers: OfferJson[] }>(
          await capa(["offers", "--json", "--region", "eu-west", "--gpu-model", H100]),
          "capa offers",
        );
        return offers[0]?.minMicrosPerGpuHour === 1_230_000 ? offers : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: "the order book to show the new eu-west H100 price" },
    );
    const got = parseJsonOutput<{ prices: { gpuModel: string; onDemandPerHour: number }[] }>(
      await capa(["agent", "price", "get", "--json", "--agent", agent.agentId]),
      "capa agent price get",
    );
    expect(got.prices.find((p) => p.gpuModel === H100)?.onDemandPerHour).toBe(1_230_000);

    const wrongRegion = await capa([
      "agent",
      "price",
      "set",
      "--agent",
      agent.agentId,
      "--region",
      "us-east",
      "--nats-nkey",
      join(up!.ready.natsAuthDir, "agents", `${agent.agentId}.nk`),
      "h100=2",
    ]);
    expect(wrongRegion.code).toBe(1);
    expect(wrongRegion.stderr).toMatch(/may not reach agent .* in region us-east/);
  });
});
