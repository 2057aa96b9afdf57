import * as api from "@capa/api";
import { describe, expect, it } from "vitest";
import {
  formatGpuHours,
  invoiceJson,
  renderEarnings,
  renderInvoice,
  renderReceiptsTable,
  renderTenantLimits,
} from "./render-billing.js";

const NOV = Date.UTC(2026, 10, 1);
const DEC = Date.UTC(2026, 11, 1);

function charge(taskId: string, jobId: string, gpus: number[], gpuMs: number, price: number, amount: number) {
  return api.LedgerEntry.fromPartial({
    id: `charge:${taskId}:1`,
    kind: api.LedgerEntryKind.LEDGER_ENTRY_KIND_CHARGE,
    tenant: "acme",
    jobId,
    taskId,
    epoch: 1,
    agentId: "sim-eu-west-1",
    gpuModel: "H100-80GB",
    gpuIndices: gpus,
    gpuMilliseconds: gpuMs,
    priceMicrosPerGpuHour: price,
    amountMicros: amount,
  });
}

function invoice(): api.GetInvoiceResponse {
  return api.GetInvoiceResponse.fromPartial({
    tenant: "acme",
    fromUnixMs: NOV,
    toUnixMs: DEC,
    totalMicros: 2_390_000 + 1_195_000 + 1_195_000,
    lines: [
      {
        jobId: "j-one",
        allocations: 1,
        gpuMilliseconds: 3_600_000,
        amountMicros: 2_390_000,
        charges: [charge("j-one-0", "j-one", [0], 3_600_000, 2_390_000, 2_390_000)],
      },
      {
        jobId: "j-two",
        allocations: 2,
        gpuMilliseconds: 3_600_000,
        amountMicros: 2_390_000,
        charges: [
          charge("j-two-0", "j-two", [0, 1], 1_800_000, 2_390_000, 1_195_000),
          charge("j-two-1", "j-two", [2, 3], 1_800_000, 2_390_000, 1_195_000),
        ],
      },
    ],
  });
}

describe("formatGpuHours", () => {
  it("shows up to 4 decimals without trailing zeros, and never a non-zero amount as 0", () => {
    expect(formatGpuHours(0)).toBe("0");
    expect(formatGpuHours(3_600_000)).toBe("1");
    expect(formatGpuHours(1_800_000)).toBe("0.5");
    expect(formatGpuHours(2_000)).toBe("0.0006");
    expect(formatGpuHours(100)).toBe("<0.0001");
    expect(formatGpuHours(45_000_000)).toBe("12.5");
  });
});

describe("renderInvoice", () => {
  it("lists every charge with its job, task, agent, GPUs, GPU-hours, price and amount, subtotals and the total", () => {
    expect(renderInvoice(invoice()).split("\n")).toEqual([
      "tenant:  acme",
      "period:  2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z",
      "jobs:    2",
      "total:   $4.78",
      "",
      "JOB    TASK                      AGENT          GPUS         GPU-H  $/GPU-H  AMOUNT",
      "j-one  j-one-0                   sim-eu-west-1  1xH100-80GB      1    $2.39   $2.39",
      "j-two  j-two-0                   sim-eu-west-1  2xH100-80GB    0.5    $2.39  $1.195",
      "j-two  j-two-1                   sim-eu-west-1  2xH100-80GB    0.5    $2.39  $1.195",
      "       subtotal (2 allocations)                                  1            $2.39",
      "TOTAL                                                            2            $4.78",
    ]);
  });

  it("says so when nothing was charged, with the window asked for", () => {
    const empty = api.GetInvoiceResponse.fromPartial({ tenant: "acme", fromUnixMs: NOV });
    expect(renderInvoice(empty)).toBe(
      ["tenant:  acme", "period:  since 2026-11-01T00:00:00Z", "jobs:    0", "total:   $0.00", "", "no charges"].join(
        "\n",
      ),
    );
  });

  it("keeps micros in JSON and names the entry kinds", () => {
    const json = invoiceJson(invoice());
    expect(json.totalMicros).toBe(4_780_000);
    expect(json.lines[1]?.charges.map((c) => [c.kind, c.amountMicros])).toEqual([
      ["charge", 1_195_000],
      ["charge", 1_195_000],
    ]);
    expect(JSON.parse(JSON.stringify(json)).lines[0].charges[0].priceMicrosPerGpuHour).toBe(2_390_000);
  });
});

describe("renderEarnings", () => {
  it("shows gross, fee and payout per allocation and in total for one agent", () => {
    const statement = api.GetEarningsResponse.fromPartial({
      agentId: "sim-eu-west-1",
      grossMicros: 2_390_000,
      feeMicros: 239_000,
      payoutMicros: 2_151_000,
      lines: [
        {
          agentId: "sim-eu-west-1",
          jobId: "j-one",
          taskId: "j-one-0",
          gpuModel: "H100-80GB",
          gpuMilliseconds: 3_600_000,
          priceMicrosPerGpuHour: 2_390_000,
          grossMicros: 2_390_000,
          feeMicros: 239_000,
          payoutMicros: 2_151_000,
        },
      ],
    });
    expect(renderEarnings(statement).split("\n")).toEqual([
      "agent:        sim-eu-west-1",
      "period:       all time",
      "allocations:  1",
      "gross:        $2.39",
      "fee:          $0.239",
      "payout:       $2.151",
      "",
      "AGENT          JOB    TASK     MODEL      GPU-H  $/GPU-H  GROSS     FEE  PAYOUT",
      "sim-eu-west-1  j-one  j-one-0  H100-80GB      1    $2.39  $2.39  $0.239  $2.151",
      "TOTAL                                                     $2.39  $0.239  $2.151",
    ]);
  });

  it("names a provider or all agents when no agent was asked for", () => {
    expect(renderEarnings(api.GetEarningsResponse.fromPartial({ provider: "lambda" }))).toMatch(
      /^provider:\s+lambda$/m,
    );
    const all = renderEarnings(api.GetEarningsResponse.fromPartial({}));
    expect(all).toMatch(/^agents:\s+all$/m);
    expect(all).toMatch(/no earnings$/);
  });
});

describe("renderReceiptsTable", () => {
  it("lists receipts with their window end in UTC", () => {
    const r = api.Receipt.fromPartial({
      receiptId: "rcpt:j-one-0:1",
      jobId: "j-one",
      agentId: "sim-eu-west-1",
      gpuIndices: [0],
      gpuModel: "H100-80GB",
      gpuMilliseconds: 3_600_000,
      priceMicrosPerGpuHour: 2_390_000,
      amountMicros: 2_390_000,
      endUnixMs: NOV + 3_600_000,
    });
    expect(renderReceiptsTable([r]).split("\n")).toEqual([
      "RECEIPT         JOB    AGENT          GPUS         GPU-H  $/GPU-H  AMOUNT  ENDED",
      "rcpt:j-one-0:1  j-one  sim-eu-west-1  1xH100-80GB      1    $2.39   $2.39  2026-11-01T01:00:00Z",
    ]);
    expect(renderReceiptsTable([])).toBe("no receipts");
  });
});

describe("renderTenantLimits", () => {
  it("shows caps, commitments and what is left of the month", () => {
    const out = renderTenantLimits(
      api.GetTenantLimitsResponse.fromPartial({
        limits: {
          tenant: "acme",
          hourlyCapMicros: 10_000_000,
          monthlyCapMicros: 500_000_000,
          updatedAtUnixMs: NOV,
          updatedBy: "alice",
        },
        month: "2026-11",
        monthSettledMicros: 12_500_000,
        reservedMicros: 2_390_000,
        availableMicros: 485_110_000,
        hourlyCommittedMicros: 2_390_000,
      }),
      NOV + 90_000,
    );
    expect(out.split("\n")).toEqual([
      "tenant:       acme",
      "hourly cap:   $10.00/h",
      "committed:    $2.39/h (admitted, unfinished jobs)",
      "monthly cap:  $500.00",
      "month:        2026-11",
      "settled:      $12.50",
      "reserved:     $2.39",
      "available:    $485.11",
      "updated:      1m30s ago by alice",
    ]);
  });

  it("shows caps of 0 as none", () => {
    const out = renderTenantLimits(
      api.GetTenantLimitsResponse.fromPartial({ limits: { tenant: "acme" }, month: "2026-11" }),
      NOV,
    );
    expect(out).toMatch(/^hourly cap:\s+none$/m);
    expect(out).toMatch(/^monthly cap:\s+none$/m);
    expect(out).toMatch(/^available:\s+no monthly cap$/m);
    expect(out).toMatch(/^updated:\s+never$/m);
  });

  it("shows when without who for limits stored before the actor was recorded", () => {
    const out = renderTenantLimits(
      api.GetTenantLimitsResponse.fromPartial({ limits: { tenant: "acme", updatedAtUnixMs: NOV, updatedBy: "" } }),
      NOV + 60_000,
    );
    expect(out).toMatch(/^updated:\s+1m ago$/m);
  });
});
