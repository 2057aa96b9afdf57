import * as api from "@capa/api";
import { describe, expect, it } from "vitest";
import {
  describeQuoteStart,
  jobJson,
  logLineJson,
  renderAgentOffersTable,
  renderAgentsTable,
  renderExplanation,
  renderJobDetail,
  renderJobsTable,
  renderOffersTable,
  renderQuote,
} from "./render.js";

const NOW = 1_700_000_100_000;

function job(): api.Job {
  return api.Job.fromPartial({
    id: "j-abc",
    tenant: "default",
    state: api.JobState.JOB_STATE_SUCCEEDED,
    createdAtMs: NOW - 100_000,
    finishedAtMs: NOW - 40_000,
    spentMicros: 1_250,
    spec: {
      name: "hello",
      kind: api.JobKind.JOB_KIND_BATCH,
      replicas: 1,
      gpusPerReplica: 1,
      template: { command: ["sh", "-c", "echo hi"] },
    },
    tasks: [
      {
        id: "j-abc-0",
        state: api.TaskState.TASK_STATE_SUCCEEDED,
        agentId: "sim-eu-west-1",
        region: "eu-west",
        gpuModel: "H100-80GB",
        gpuIndices: [2],
        priceMicrosPerGpuHour: 2_390_000,
        startedAtMs: NOW - 90_000,
        exitCode: 0,
      },
    ],
  });
}

describe("jobs", () => {
  it("renders the job list with state, placement region and locked price", () => {
    expect(renderJobsTable([job()], NOW).split("\n")).toEqual([
      "ID     NAME   KIND   STATE      GPUS  REGION   $/GPU-H  CREATED",
      "j-abc  hello  batch  SUCCEEDED  1x1   eu-west  $2.39    1m40s ago",
    ]);
    expect(renderJobsTable([], NOW)).toBe("no jobs");
  });

  it("renders one job with its tasks: agent, GPUs, price and exit code", () => {
    const out = renderJobDetail(job(), NOW);
    expect(out).toMatch(/^state:\s+SUCCEEDED$/m);
    expect(out).toMatch(/^command:\s+sh -c echo hi$/m);
    expect(out).toMatch(/^finished:\s+40s ago \(ran 50s\)$/m);
    expect(out).toMatch(/^spent:\s+\$0\.00125$/m);
    expect(out).toMatch(/j-abc-0\s+SUCCEEDED\s+sim-eu-west-1\s+eu-west\s+H100-80GB\s+2\s+\$2\.39\s+0/);
  });

  it("shows the retry policy and every attempt", () => {
    const j = job();
    j.spec!.retries = { max: 2, backoffSeconds: 10, on: ["failed", "lost"] };
    j.attempt = 2;
    j.attempts = [
      api.Attempt.fromPartial({
        number: 1,
        outcome: "failed",
        taskId: "j-abc-0",
        agentId: "a1",
        exitCode: 3,
        reason: "task j-abc-0 exited with code 3",
      }),
      api.Attempt.fromPartial({
        number: 2,
        outcome: "succeeded",
        taskId: "j-abc-0",
        agentId: "a2",
        reason: "all tasks succeeded",
      }),
    ];
    const out = renderJobDetail(j, NOW);
    expect(out).toMatch(/^retries:\s+attempt 2 of 3 \(on failed, lost, backoff 10s\)$/m);
    expect(out).toMatch(/^ATTEMPT\s+OUTCOME\s+TASK\s+AGENT\s+EXIT\s+REASON$/m);
    expect(out).toMatch(/^1\s+FAILED\s+j-abc-0\s+a1\s+3\s+task j-abc-0 exited with code 3$/m);
    expect(out).toMatch(/^2\s+SUCCEEDED\s+j-abc-0\s+a2\s+0\s+all tasks succeeded$/m);
    expect(renderJobDetail(job(), NOW)).not.toContain("ATTEMPT");
  });

  it("gives scripts lower-case states and integer micros", () => {
    const view = jobJson(job());
    expect(view.state).toBe("succeeded");
    expect(view.tasks[0]).toMatchObject({ state: "succeeded", pricePerGpuHour: 2_390_000 });
    expect(view.spec.kind).toBe("batch");
  });

  it("decodes log bytes as text", () => {
    const line = api.LogLine.fromPartial({
      jobId: "j-abc",
      taskId: "j-abc-0",
      stream: api.LogStream.LOG_STREAM_STDOUT,
      data: Buffer.from("hi\n"),
      seq: 1,
    });
    expect(logLineJson(line)).toEqual({
      jobId: "j-abc",
      taskId: "j-abc-0",
      stream: "stdout",
      text: "hi\n",
      seq: 1,
      atMs: 0,
    });
  });
});

const agent = api.AgentInfo.fromPartial({
  agentId: "sim-us-east-1",
  region: "us-east",
  zone: "us-east-a",
  status: "ready",
  simulated: true,
  lastSeenMs: NOW - 2_000,
  gpus: [0, 1, 2, 3].map((index) => ({ index, model: "H100-80GB" })).concat([{ index: 4, model: "A100-80GB" }]),
  freeGpuIndices: [1, 2, 3, 4],
  prices: [
    { gpuModel: "H100-80GB", onDemandMicrosPerHour: 2_490_000, interruptibleMicrosPerHour: 1_763_200 },
    { gpuModel: "A100-80GB", onDemandMicrosPerHour: 1_790_000 },
  ],
  taskIds: ["j-1-0"],
});

describe("agents and offers", () => {
  it("summarises an agent's GPUs by model with free counts and prices", () => {
    const out = renderAgentsTable([agent], NOW);
    expect(out).toContain("4xH100-80GB (3 free), 1xA100-80GB (1 free)");
    expect(out).toContain("H100-80GB $2.49 / $1.7632 spot, A100-80GB $1.79");
    expect(out).toContain("2s ago (sim)");
  });

  it("falls back to one row per agent and model", () => {
    expect(renderAgentOffersTable([agent]).split("\n")).toEqual([
      "AGENT          REGION   MODEL      FREE  $/GPU-H  SPOT $/GPU-H",
      "sim-us-east-1  us-east  H100-80GB   3/4    $2.49       $1.7632",
      "sim-us-east-1  us-east  A100-80GB   1/1    $1.79             -",
    ]);
  });

  it("renders the aggregated order book", () => {
    const offer = api.Offer.fromPartial({
      region: "eu-west",
      gpuModel: "H100-80GB",
      vramMib: 81_920,
      agents: 2,
      totalGpus: 8,
      freeGpus: 7,
      minMicrosPerGpuHour: 2_390_000,
      medianMicrosPerGpuHour: 3_406_968,
      freshestAdvertAgeMs: 1_500,
    });
    const out = renderOffersTable([offer]);
    expect(out).toMatch(/eu-west\s+H100-80GB\s+80GiB\s+2\s+7\/8\s+\$2\.39\s+\$3\.406968\s+on-demand\s+2s/);
  });
});

describe("explanations", () => {
  it("shows outcome, rejections by count and the chosen placement with its score breakdown", () => {
    const out = renderExplanation(
      api.Explanation.fromPartial({
        outcome: "placed",
        profile: "balanced",
        candidatesConsidered: 4,
        rejections: { "insufficient-gpus": 1, "over-max-price": 2 },
        summary: ["placed replica 0 on sim-eu-west-1"],
        chosen: [
          {
            replica: 0,
            agentId: "sim-eu-west-1",
            region: "eu-west",
            gpuModel: "H100-80GB",
            gpuIndices: [0],
            priceMicrosPerGpuHour: 2_390_000,
            score: 87.25,
            scores: { cost: 100, latency: 50 },
          },
        ],
      }),
    );
    expect(out).toContain("outcome:     placed");
    expect(out).toContain("  placed replica 0 on sim-eu-west-1");
    expect(out.indexOf("over-max-price")).toBeLessThan(out.indexOf("insufficient-gpus"));
    expect(out).toMatch(/0\s+sim-eu-west-1\s+eu-west\s+H100-80GB\s+0\s+\$2\.39\s+87\.3\s+cost=100 latency=50/);
  });
});

describe("quotes", () => {
  const fits = () =>
    api.QuoteResponse.fromPartial({
      feasibleOffers: 3,
      estimatedHourlyMicros: 9_560_000,
      estimatedTotalMicros: 9_560_000,
      estimatedStartUnixMs: NOW,
      regions: [
        {
          region: "eu-west",
          gpuModel: "H100-80GB",
          offers: 2,
          freeGpus: 8,
          cheapestMicrosPerGpuHour: 2_390_000,
          medianMicrosPerGpuHour: 2_690_000,
        },
        {
          region: "us-east",
          gpuModel: "H100-80GB",
          offers: 1,
          freeGpus: 4,
          cheapestMicrosPerGpuHour: 2_990_000,
          medianMicrosPerGpuHour: 2_990_000,
        },
      ],
      explanation: {
        chosen: [0, 1].map((replica) => ({
          replica,
          agentId: "sim-eu-west-1",
          region: "eu-west",
          gpuModel: "H100-80GB",
          gpuIndices: [replica * 2, replica * 2 + 1],
          priceMicrosPerGpuHour: 2_390_000,
        })),
      },
    });

  it("shows the count, rate, total, start, likely placement and the price table", () => {
    expect(renderQuote(fits(), { nowMs: NOW, durationSeconds: 3600 }).split("\n")).toEqual([
      "feasible offers:  3",
      "estimated rate:   $9.56/h",
      "estimated total:  $9.56 for 1h",
      "could start:      now",
      "would place on:   sim-eu-west-1 (eu-west) 2 replica(s) on H100-80GB @ $2.39/GPU-h",
      "",
      "REGION   MODEL      OFFERS  FREE GPUS  CHEAPEST $/GPU-H  MEDIAN $/GPU-H",
      "eu-west  H100-80GB       2          8             $2.39           $2.69",
      "us-east  H100-80GB       1          4             $2.99           $2.99",
    ]);
  });

  it("asks for --duration instead of showing a zero total", () => {
    const q = { ...fits(), estimatedTotalMicros: 0 };
    expect(renderQuote(q, { nowMs: NOW, durationSeconds: 0 })).toMatch(
      /^estimated total:\s+- \(give --duration to price the whole run\)$/m,
    );
  });

  it("gives the reason and no price or placement when nothing fits", () => {
    const q = api.QuoteResponse.fromPartial({
      feasibleOffers: 0,
      reason: "no offer at or below $1.00/GPU-h; cheapest is H100-80GB at $2.39/GPU-h in eu-west",
    });
    expect(renderQuote(q, { nowMs: NOW, durationSeconds: 3600 }).split("\n")).toEqual([
      "feasible offers:  0",
      "nothing fits:     no offer at or below $1.00/GPU-h; cheapest is H100-80GB at $2.39/GPU-h in eu-west",
      "could start:      never, as things stand (see reason)",
    ]);
  });

  it("says now within a few seconds of the clock, else when and how far off, or unknown", () => {
    const at = (ms: number) => ({ ...fits(), estimatedStartUnixMs: ms });
    expect(describeQuoteStart(at(NOW - 2_000), NOW)).toBe("now");
    expect(describeQuoteStart(at(NOW + 4_000), NOW)).toBe("now");
    expect(describeQuoteStart(at(NOW + 5_400_000), NOW)).toBe(
      `in 1h30m, at ${new Date(NOW + 5_400_000).toISOString().replace(/\.\d{3}Z$/, "Z")}`,
    );
    expect(describeQuoteStart(at(0), NOW)).toMatch(/^unknown/);
    // Enough offers but not enough capacity: a reason, so no start.
    expect(describeQuoteStart({ ...at(NOW), reason: "feasible offers hold at most 1 of 2 replica(s)" }, NOW)).toMatch(
      /^never/,
    );
  });

  it("reads the start basis: now, after the jobs queued ahead, as running jobs end, or unknown with the detail", () => {
    const q = (fields: Partial<api.QuoteResponse>) => ({ ...fits(), ...fields });
    const iso = new Date(NOW + 5_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    expect(describeQuoteStart(q({ startBasis: "free-now", estimatedStartUnixMs: NOW }), NOW)).toBe("now");
    expect(
      describeQuoteStart(q({ startBasis: "queue", queuedAhead: 3, estimatedStartUnixMs: NOW + 5_400_000 }), NOW),
    ).toBe(`in 1h30m (after 3 jobs queued ahead), at ${iso}`);
    expect(
      describeQuoteStart(q({ startBasis: "queue", queuedAhead: 1, estimatedStartUnixMs: NOW + 5_400_000 }), NOW),
    ).toBe(`in 1h30m (after 1 job queued ahead), at ${iso}`);
    expect(describeQuoteStart(q({ startBasis: "expected-ends", estimatedStartUnixMs: NOW + 5_400_000 }), NOW)).toBe(
      `in 1h30m (as running jobs end), at ${iso}`,
    );
    const detail = "GPUs this job needs stay held by job j-1 with no expected end";
    expect(describeQuoteStart(q({ startBasis: "unknown", startDetail: detail, estimatedStartUnixMs: 0 }), NOW)).toBe(
      `unknown: ${detail}`,
    );
    expect(
      describeQuoteStart(
        q({ startBasis: "event-cap", startDetail: "stopped after 10 events", estimatedStartUnixMs: 0 }),
        NOW,
      ),
    ).toBe("unknown: stopped after 10 events");
    expect(describeQuoteStart(q({ startBasis: "infeasible", feasibleOffers: 0, reason: "none" }), NOW)).toMatch(
      /^never/,
    );
  });

  it("renders the queued start in the quote's could-start line", () => {
    const q = { ...fits(), startBasis: "queue", queuedAhead: 2, estimatedStartUnixMs: NOW + 3_600_000 };
    expect(renderQuote(q, { nowMs: NOW, durationSeconds: 3600 })).toMatch(
      /^could start:\s+in 1h \(after 2 jobs queued ahead\), at \S+Z$/m,
    );
  });
});
