/**
 * What each answer looks like, for people (tables, detail views) and for scripts (`--json`). Pure: the
 * clock is a parameter. JSON uses the domain shapes for jobs (states as lower-case names, money as integer
 * micros) and the wire shapes (camelCase proto fields, micros) for everything else.
 */
import type * as api from "@capa/api";
import { jobFromPb, jobStateFromPb } from "@capa/bus";
import type { Job } from "@capa/domain";
import {
  formatAge,
  formatAmount,
  formatDuration,
  formatIndices,
  formatList,
  formatPrice,
  formatState,
  renderFields,
  renderTable,
} from "./format.js";
import { outputSettings } from "./output.js";
import { renderProvenance } from "./render-provenance.js";

/** `-o wide`: tables with more columns (jobs: tenant, models, reason; agents: host, fabric, free GPUs, labels). */
function wide(): boolean {
  return outputSettings().format === "wide";
}

export function jobJson(job: api.Job): Job {
  return jobFromPb(job);
}

export function jobEventJson(event: api.JobEvent) {
  return {
    jobId: event.jobId,
    state: jobStateFromPb(event.state) ?? "pending",
    message: event.message,
    atMs: event.atMs,
    ...(event.job ? { job: jobJson(event.job) } : {}),
  };
}

export function logLineJson(line: api.LogLine) {
  return {
    jobId: line.jobId,
    taskId: line.taskId,
    stream: streamName(line.stream),
    text: Buffer.from(line.data).toString("utf8"),
    seq: line.seq,
    atMs: line.atMs,
  };
}

export function streamName(stream: api.LogStream): "stdout" | "stderr" | "system" {
  if (stream === 1) return "stdout";
  if (stream === 2) return "stderr";
  return "system";
}

/** The placement summary of a job: regions, models and the locked price range of its tasks. */
function placementSummary(job: Job): { where: string; price: string } {
  const placed = job.tasks.filter((t) => t.agentId !== "");
  if (placed.length === 0) return { where: "-", price: "-" };
  const regions = [...new Set(placed.map((t) => t.region))].join(",");
  const prices = placed.map((t) => t.pricePerGpuHour).filter((p) => p > 0);
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  const price =
    prices.length === 0 ? "-" : low === high ? formatPrice(low) : `${formatPrice(low)}-${formatPrice(high)}`;
  return { where: regions, price };
}

export function renderJobsTable(jobs: api.Job[], nowMs: number): string {
  if (jobs.length === 0) return "no jobs";
  const rows = jobs.map((pb) => {
    const job = jobJson(pb);
    const { where, price } = placementSummary(job);
    return [
      job.id,
      job.spec.name || "-",
      job.spec.kind,
      formatState(job.state),
      `${job.spec.replicas}x${job.spec.gpusPerReplica}`,
      where,
      price,
      formatAge(job.createdAtMs, nowMs),
      ...(wide() ? [job.tenant, job.spec.gpuModels.join(",") || "any", job.reason || "-"] : []),
    ];
  });
  const extra = wide() ? ["TENANT", "MODELS", "REASON"] : [];
  return renderTable(["ID", "NAME", "KIND", "STATE", "GPUS", "REGION", "$/GPU-H", "CREATED", ...extra], rows);
}

export function renderJobDetail(pb: api.Job, nowMs: number): string {
  const job = jobJson(pb);
  const s = job.spec;
  const fields: [string, string][] = [
    ["job", job.id],
    ["name", s.name || "-"],
    ["tenant", job.tenant],
    ["state", formatState(job.state) + (job.cancelRequested && job.state !== "cancelled" ? " (cancel requested)" : "")],
    [
      "kind",
      s.elastic
        ? `${s.kind}, elastic ${s.elastic.min}..${s.elastic.max} replica(s) x ${s.gpusPerReplica} GPU(s)`
        : `${s.kind}, ${s.replicas} replica(s) x ${s.gpusPerReplica} GPU(s)`,
    ],
    ["command", s.template.command.join(" ")],
    ["models", formatList(s.gpuModels)],
    ["regions", formatList(s.regions)],
  ];
  if (s.maxPricePerGpuHour > 0) fields.push(["max price", `${formatPrice(s.maxPricePerGpuHour)}/GPU-h`]);
  if (s.budget > 0) fields.push(["budget", formatAmount(s.budget)]);
  if (job.reason) fields.push(["reason", job.reason]);
  fields.push(["created", formatAge(job.createdAtMs, nowMs)]);
  if (job.finishedAtMs) {
    fields.push(["finished", `${formatAge(job.finishedAtMs, nowMs)} (ran ${runTime(job)})`]);
  }
  fields.push(["spent", formatAmount(job.spent)]);
  if (job.reserved > 0) fields.push(["reserved", formatAmount(job.reserved)]);
  if (s.retries && s.retries.max > 0) {
    const r = s.retries;
    fields.push([
      "retries",
      `attempt ${job.attempt ?? 1} of ${r.max + 1} (on ${r.on.join(", ")}, backoff ${formatDuration(r.backoffSeconds)})`,
    ]);
  }
  const r = job.rendezvous;
  if (r && r.generation > 0) {
    const changing = r.changing ? `; changing: ${r.changing.reason}` : "";
    fields.push(["generation", `${r.generation}: ${r.size} worker(s)${changing}`]);
  }
  const tasks = job.tasks.map((t) => [
    t.id,
    formatState(t.state),
    t.agentId || "-",
    t.region || "-",
    t.gpuModel || "-",
    formatIndices(t.gpuIndices),
    formatPrice(t.pricePerGpuHour),
    isTaskFinished(t.state) ? (t.signal ? t.signal : String(t.exitCode)) : "-",
    t.message || "",
  ]);
  const table =
    tasks.length === 0
      ? "no tasks"
      : renderTable(["TASK", "STATE", "AGENT", "REGION", "MODEL", "GPUS", "$/GPU-H", "EXIT", "MESSAGE"], tasks, {
          rightAlign: [6],
        });
  return `${renderFields(fields)}\n\n${table}${renderAttempts(job)}${renderGenerations(job)}${renderProvenance(job)}`;
}

/** A training gang's rendezvous generations: size and why each formed (grew, shrank, restarted). */
function renderGenerations(job: Job): string {
  const history = job.rendezvous?.history ?? [];
  if (history.length <= 1 && !job.spec.elastic) return "";
  const rows = history.map((g) => [String(g.generation), String(g.size), new Date(g.atMs).toISOString(), g.reason]);
  return `\n\n${renderTable(["GENERATION", "WORKERS", "AT", "WHY"], rows)}`;
}

/** Every recorded attempt of a job with a retry policy: how it ended, where, with which exit. */
function renderAttempts(job: Job): string {
  const attempts = job.attempts ?? [];
  if (attempts.length === 0) return "";
  const rows = attempts.map((a) => [
    String(a.number),
    a.outcome.toUpperCase(),
    a.taskId || "-",
    a.agentId || "-",
    a.signal || String(a.exitCode),
    a.reason,
  ]);
  return `\n\n${renderTable(["ATTEMPT", "OUTCOME", "TASK", "AGENT", "EXIT", "REASON"], rows)}`;
}

function isTaskFinished(state: string): boolean {
  return ["succeeded", "failed", "cancelled", "rejected", "lost", "preempted"].includes(state);
}

function runTime(job: Job): string {
  const started = job.tasks.map((t) => t.startedAtMs).filter((ms) => ms > 0);
  const from = started.length > 0 ? Math.min(...started) : job.createdAtMs;
  return formatDuration((job.finishedAtMs - from) / 1000);
}

export function renderJobEvent(event: api.JobEvent): string {
  const state = formatState(jobStateFromPb(event.state) ?? "pending");
  const time = event.atMs ? new Date(event.atMs).toISOString().slice(11, 19) : "--:--:--";
  return `${time}  ${event.jobId}  ${state}${event.message ? `  ${event.message}` : ""}`;
}

/** GPUs of an agent grouped by model: "4xH100-80GB (3 free)". */
function gpuSummary(agent: api.AgentInfo): string {
  const free = new Set(agent.freeGpuIndices);
  const byModel = new Map<string, { total: number; free: number }>();
  for (const g of agent.gpus) {
    const entry = byModel.get(g.model) ?? { total: 0, free: 0 };
    entry.total++;
    if (free.has(g.index)) entry.free++;
    byModel.set(g.model, entry);
  }
  if (byModel.size === 0) return "none";
  return [...byModel].map(([model, n]) => `${n.total}x${model} (${n.free} free)`).join(", ");
}

function priceSummary(prices: api.GpuPrice[]): string {
  if (prices.length === 0) return "-";
  return prices
    .map((p) => {
      const spot = p.interruptibleMicrosPerHour > 0 ? ` / ${formatPrice(p.interruptibleMicrosPerHour)} spot` : "";
      return `${p.gpuModel} ${formatPrice(p.onDemandMicrosPerHour)}${spot}`;
    })
    .join(", ");
}

export function renderAgentsTable(agents: api.AgentInfo[], nowMs: number): string {
  if (agents.length === 0) return "no agents";
  const rows = agents.map((a) => [
    a.agentId,
    a.region,
    a.zone || "-",
    a.status || "-",
    gpuSummary(a),
    priceSummary(a.prices),
    String(a.taskIds.length),
    formatAge(a.lastSeenMs, nowMs) + (a.simulated ? " (sim)" : ""),
    ...(wide()
      ? [
          a.hostname || "-",
          a.fabricDomain || "-",
          formatIndices(a.freeGpuIndices),
          Object.entries(a.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(",") || "-",
        ]
      : []),
  ]);
  const extra = wide() ? ["HOST", "FABRIC", "FREE-GPUS", "LABELS"] : [];
  return renderTable(["AGENT", "REGION", "ZONE", "STATUS", "GPUS", "$/GPU-H", "TASKS", "SEEN", ...extra], rows);
}

export function renderOffersTable(offers: api.Offer[]): string {
  if (offers.length === 0) return "no offers";
  const rows = offers.map((o) => [
    o.region,
    o.gpuModel,
    `${Math.round(o.vramMib / 1024)}GiB`,
    o.agents,
    `${o.freeGpus}/${o.totalGpus}`,
    formatPrice(o.minMicrosPerGpuHour),
    formatPrice(o.medianMicrosPerGpuHour),
    o.interruptible ? "spot" : "on-demand",
    formatDuration(o.freshestAdvertAgeMs / 1000),
  ]);
  return renderTable(["REGION", "MODEL", "VRAM", "AGENTS", "FREE", "MIN $/GPU-H", "MEDIAN", "CAPACITY", "AGE"], rows, {
    rightAlign: [3, 4, 5, 6],
  });
}

/** The fallback order book when the scheduler has no ListOffers: one row per agent and GPU model. */
export function renderAgentOffersTable(agents: api.AgentInfo[]): string {
  const rows: (string | number)[][] = [];
  for (const a of agents) {
    const free = new Set(a.freeGpuIndices);
    const models = [...new Set(a.gpus.map((g) => g.model))];
    for (const model of models) {
      const gpus = a.gpus.filter((g) => g.model === model);
      const price = a.prices.find((p) => p.gpuModel === model);
      rows.push([
        a.agentId,
        a.region,
        model,
        `${gpus.filter((g) => free.has(g.index)).length}/${gpus.length}`,
        formatPrice(price?.onDemandMicrosPerHour),
        formatPrice(price?.interruptibleMicrosPerHour),
      ]);
    }
  }
  if (rows.length === 0) return "no offers";
  return renderTable(["AGENT", "REGION", "MODEL", "FREE", "$/GPU-H", "SPOT $/GPU-H"], rows, { rightAlign: [3, 4, 5] });
}

function placementRows(placements: api.ScoredPlacement[]): string {
  const rows = placements.map((p) => [
    p.replica,
    p.agentId,
    p.region,
    p.gpuModel,
    formatIndices(p.gpuIndices),
    formatPrice(p.priceMicrosPerGpuHour),
    p.score.toFixed(1),
    Object.entries(p.scores)
      .map(([k, v]) => `${k}=${v.toFixed(0)}`)
      .join(" "),
  ]);
  return renderTable(["REPLICA", "AGENT", "REGION", "MODEL", "GPUS", "$/GPU-H", "SCORE", "BREAKDOWN"], rows, {
    rightAlign: [5, 6],
  });
}

export function renderExplanation(e: api.Explanation): string {
  const fields: [string, string | number][] = [
    ["outcome", e.outcome || "-"],
    ["profile", e.profile || "-"],
    ["candidates", e.candidatesConsidered],
  ];
  if (e.estimatedCostMicros > 0) fields.push(["estimated cost", formatAmount(e.estimatedCostMicros)]);
  if (e.relaxation) fields.push(["would place if", e.relaxation]);
  if (e.preemptedTaskIds.length > 0) fields.push(["preempts", e.preemptedTaskIds.join(", ")]);
  const parts = [renderFields(fields)];
  if (e.summary.length > 0) parts.push(e.summary.map((line) => `  ${line}`).join("\n"));
  const rejections = Object.entries(e.rejections).sort((a, b) => b[1] - a[1]);
  if (rejections.length > 0)
    parts.push(renderTable(["REJECTED BECAUSE", "CANDIDATES"], rejections, { rightAlign: [1] }));
  if (e.chosen.length > 0) parts.push(`chosen:\n${placementRows(e.chosen)}`);
  if (e.runnerUp.length > 0) parts.push(`runner-up:\n${placementRows(e.runnerUp)}`);
  return parts.join("\n\n");
}

export function renderPolicy(p: api.Policy, nowMs: number): string {
  const fields: [string, string | number][] = [
    ["profile", p.profile],
    ["available", formatList(p.availableProfiles, "-")],
    ["revision", p.revision],
    ["updated", p.updatedAtMs ? `${formatAge(p.updatedAtMs, nowMs)}${p.updatedBy ? ` by ${p.updatedBy}` : ""}` : "-"],
  ];
  return `${renderFields(fields)}\n\n${prettyJson(p.profileJson)}`;
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Within this much of now, an estimated start reads "now" (the scheduler's and our clocks differ a little). */
const START_NOW_SLACK_MS = 5_000;

/** The UTC time of an instant, to the second: "2026-11-05T11:30:00Z". */
function utcSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * When a quoted job could start, from the scheduler's start basis: "now"; "in 1h30m (after 3 jobs queued
 * ahead), at <UTC>" or "in 1h30m (as running jobs end), at <UTC>"; "unknown: <detail>" (GPUs held without an
 * expected end, or the simulation's event cap); "never, as things stand (see reason)". A scheduler that sends
 * no basis (older) is read from the start time alone.
 */
export function describeQuoteStart(q: api.QuoteResponse, nowMs: number): string {
  if (q.reason || q.feasibleOffers === 0 || q.startBasis === "infeasible") return "never, as things stand (see reason)";
  if (q.startBasis === "unknown" || q.startBasis === "event-cap") {
    return `unknown: ${q.startDetail || (q.startBasis === "event-cap" ? "the start simulation hit its event cap" : "no expected end")}`;
  }
  if (q.estimatedStartUnixMs <= 0) {
    return q.startDetail
      ? `unknown: ${q.startDetail}`
      : "unknown (the GPUs that fit are busy with jobs of no stated --duration)";
  }
  if (q.startBasis === "free-now" || q.estimatedStartUnixMs <= nowMs + START_NOW_SLACK_MS) return "now";
  const why =
    q.startBasis === "queue"
      ? ` (after ${plural(q.queuedAhead, "job")} queued ahead)`
      : q.startBasis === "expected-ends"
        ? " (as running jobs end)"
        : "";
  return `in ${formatDuration((q.estimatedStartUnixMs - nowMs) / 1000)}${why}, at ${utcSeconds(q.estimatedStartUnixMs)}`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** Where the placement engine would put the job now, one entry per agent: "sim-eu-west-1 (eu-west) 2x H100-80GB @ $2.39". */
function likelyPlacement(placements: api.ScoredPlacement[]): string {
  const byAgent = new Map<string, { p: api.ScoredPlacement; replicas: number }>();
  for (const p of placements) {
    const entry = byAgent.get(p.agentId) ?? { p, replicas: 0 };
    entry.replicas++;
    byAgent.set(p.agentId, entry);
  }
  return [...byAgent.values()]
    .map(
      ({ p, replicas }) =>
        `${p.agentId} (${p.region}) ${replicas} replica(s) on ${p.gpuModel || "CPU"} @ ${formatPrice(p.priceMicrosPerGpuHour)}/GPU-h`,
    )
    .join("; ");
}

/**
 * A quote for people: how many offers fit, the estimated rate and total, when it could start, where the engine
 * would place it, why nothing fits (when nothing does), and the cheapest and median price per region and model.
 */
export function renderQuote(q: api.QuoteResponse, options: { nowMs: number; durationSeconds: number }): string {
  const fits = !q.reason && q.feasibleOffers > 0;
  const fields: [string, string | number][] = [["feasible offers", q.feasibleOffers]];
  if (q.reason) fields.push(["nothing fits", q.reason]);
  if (fits) {
    fields.push(["estimated rate", `${formatAmount(q.estimatedHourlyMicros)}/h`]);
    fields.push([
      "estimated total",
      options.durationSeconds > 0
        ? `${formatAmount(q.estimatedTotalMicros)} for ${formatDuration(options.durationSeconds)}`
        : "- (give --duration to price the whole run)",
    ]);
  }
  fields.push(["could start", describeQuoteStart(q, options.nowMs)]);
  const chosen = q.explanation?.chosen ?? [];
  if (fits && chosen.length > 0) fields.push(["would place on", likelyPlacement(chosen)]);
  const rows = q.regions.map((r) => [
    r.region,
    r.gpuModel,
    r.offers,
    r.freeGpus,
    formatPrice(r.cheapestMicrosPerGpuHour),
    formatPrice(r.medianMicrosPerGpuHour),
  ]);
  const table =
    rows.length > 0
      ? `\n\n${renderTable(["REGION", "MODEL", "OFFERS", "FREE GPUS", "CHEAPEST $/GPU-H", "MEDIAN $/GPU-H"], rows, { rightAlign: [2, 3, 4, 5] })}`
      : "";
  return renderFields(fields) + table;
}
