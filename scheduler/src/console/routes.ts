/**
 * The web console's HTTP routes: the public static shell under /console/, and JSON data routes under
 * /api/v1/console/, each authorised by the edge. Tenants see their own tenant's jobs, decisions and spend (naming
 * another tenant is 403, another tenant's job is 404); operators see every tenant (or one, with `?tenant=`), the
 * agents, provider earnings and the active policy. Providers see the fleet and their own agents' earnings.
 */
import { actingTenant, isOperator, type Principal } from "@capa/auth";
import { type Job, NotFoundError, tenantViolations, throwIfViolations } from "@capa/domain";
import { type Ledger, ledgerFilters } from "@capa/ledger";
import type { LedgerEntry } from "@capa/market";
import type { Fleet } from "../agents/fleet.js";
import type { HttpRequest, HttpRoute } from "../http/route.js";
import { jobIdViolations } from "../jobs/job-service.js";
import type { ExplanationStore } from "../planner/explanations.js";
import type { PolicyService } from "../policy/policy-service.js";
import type { JobRepo } from "../store/job-repo.js";
import { CONSOLE_CSP, ConsoleShell } from "./static.js";
import { agentRows, decisionRow, fleetCells, jobRow, jobsView, moneySeries, recentlyChanged } from "./views.js";

export interface ConsoleRouteDeps {
  fleet: Fleet;
  jobs: JobRepo;
  explanations: ExplanationStore;
  policy: PolicyService;
  ledger: Ledger;
  /** The provider an agent advertises ("" when unknown). */
  providerOf: (agentId: string) => string;
  now: () => number;
  /** Jobs acknowledged from the intake and not written yet (scheduler/src/intake): listed and shown like the rest. */
  pending?: { get(jobId: string): Job | undefined; jobs(): Iterable<Job> };
}

/** The intake's jobs whose record is not written yet (a written one is the repo's). */
function* pendingOnly(d: ConsoleRouteDeps): Iterable<Job> {
  for (const j of d.pending?.jobs() ?? []) if (!d.jobs.summary(j.id)) yield j;
}

const TENANTS = ["tenant", "operator", "admin"] as const;
const OPERATORS = ["operator", "admin"] as const;
const VIEWERS = ["tenant", "provider", "operator", "admin"] as const;
/** How many recent decisions the console lists. */
const RECENT_DECISIONS = 25;

/** The tenant a data call is for: a tenant key's own; an operator's `?tenant=` or "" (every tenant). */
function scopeTenant(req: HttpRequest): string {
  const requested = req.query.get("tenant") ?? "";
  if (requested !== "") throwIfViolations(tenantViolations(requested));
  return actingTenant(req.principal!, requested, "");
}

/** Retired jobs the console reads back: the most recently finished (it shows 20 of them and 25 decisions). */
const RECENT_RETIRED = 50;

/**
 * The tenant's active jobs and its most recently finished retired ones (memory, else KV): retired jobs are not
 * all held in memory, and the console only shows the latest. Counts by state come from the summaries.
 */
async function visibleJobs(d: ConsoleRouteDeps, tenant: string): Promise<Job[]> {
  const mine = (j: { tenant: string }) => tenant === "" || j.tenant === tenant;
  const active = d.jobs
    .listActive()
    .map((e) => e.job)
    .filter(mine);
  for (const j of pendingOnly(d)) if (mine(j)) active.push(j);
  const held = new Set(active.map((j) => j.id));
  const retired = [...d.jobs.allSummaries()]
    .filter((s) => mine(s) && !held.has(s.id))
    .sort((a, b) => b.finishedAtMs - a.finishedAtMs || (a.id < b.id ? -1 : 1))
    .slice(0, RECENT_RETIRED);
  return [...active, ...(await d.jobs.fetchMany(retired.map((s) => s.id))).map((e) => e.job)];
}

/** Jobs by state over every job the scheduler keeps (active and retired). */
function stateCounts(d: ConsoleRouteDeps, tenant: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of [...d.jobs.allSummaries(), ...pendingOnly(d)])
    if (tenant === "" || s.tenant === tenant) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return counts;
}

/** A job the caller may see, else 404 exactly like a job that does not exist. */
async function visibleJob(d: ConsoleRouteDeps, principal: Principal, jobId: string): Promise<Job> {
  throwIfViolations(jobIdViolations(jobId, "jobId"));
  // Memory, then the intake's index (the jobs bucket may be the one without a leader), then KV.
  const job = d.jobs.get(jobId)?.job ?? d.pending?.get(jobId) ?? (await d.jobs.fetch(jobId))?.job;
  if (!job || !(isOperator(principal.role) || (principal.role === "tenant" && principal.tenant === job.tenant)))
    throw new NotFoundError(`job ${jobId} not found`);
  return job;
}

export function consoleRoutes(d: ConsoleRouteDeps): HttpRoute[] {
  const shell = new ConsoleShell();
  return [
    {
      method: "GET",
      path: "/console/*",
      access: "public",
      summary: "The web console's static shell (page, script, style, chart library); it carries no data",
      handle: (req) => {
        const file = shell.get(req.params["*"] ?? "");
        if (!file) throw new NotFoundError(`no console file ${req.path}`);
        return {
          status: 200,
          body: file.body,
          contentType: file.contentType,
          headers: {
            "cache-control": file.cacheControl,
            "content-security-policy": CONSOLE_CSP,
            "x-frame-options": "DENY",
          },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/fleet",
      access: VIEWERS,
      summary: "Fleet by region and GPU model (free, used, unavailable GPUs; prices); operators also get every agent",
      handle: (req) => {
        const agents = d.fleet.list("");
        const operator = isOperator(req.principal!.role);
        return {
          status: 200,
          json: { atMs: d.now(), cells: fleetCells(agents), ...(operator ? { agents: agentRows(agents) } : {}) },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/jobs",
      access: TENANTS,
      summary: "The queue (each waiting job with its reason), running jobs and recently finished ones",
      handle: async (req) => {
        const tenant = scopeTenant(req);
        const view = jobsView(await visibleJobs(d, tenant), d.now());
        return { status: 200, json: { atMs: d.now(), tenant, ...view, counts: stateCounts(d, tenant) } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/jobs/:jobId",
      access: TENANTS,
      summary: "One job and its last placement decision (another tenant's job is 404)",
      handle: async (req) => {
        const job = await visibleJob(d, req.principal!, req.params.jobId ?? "");
        // A job not written yet has never been planned: no decision to read.
        const explanation = d.jobs.summary(job.id) ? await d.explanations.get(job.id) : undefined;
        return {
          status: 200,
          json: { job: jobRow(job, d.now()), decision: explanation ? decisionRow(job, explanation) : null },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/decisions",
      access: TENANTS,
      summary: "Recent placement decisions with their explanation (outcome, chosen agents, rejections, summary)",
      handle: async (req) => {
        const tenant = scopeTenant(req);
        const jobs = recentlyChanged(await visibleJobs(d, tenant), RECENT_DECISIONS);
        const found = await Promise.all(jobs.map(async (job) => ({ job, e: await d.explanations.get(job.id) })));
        const decisions = found
          .filter((x) => x.e !== undefined)
          .map((x) => decisionRow(x.job, x.e!))
          .sort((a, b) => b.decidedAtMs - a.decidedAtMs);
        return { status: 200, json: { atMs: d.now(), tenant, decisions } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/spend",
      access: TENANTS,
      summary: "Tenant spend over time from the ledger's charges (cumulative, one line per tenant)",
      handle: async (req) => {
        const tenant = scopeTenant(req);
        const charges = await d.ledger.entries(tenant ? ledgerFilters.chargesOf(tenant) : ledgerFilters.allCharges);
        return {
          status: 200,
          json: { atMs: d.now(), tenant, series: moneySeries(charges, (e) => e.tenant, d.now()) },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/earnings",
      access: ["provider", "operator", "admin"],
      summary: "Provider earnings over time (payouts by provider, and the platform's fees); a provider sees its own",
      handle: async (req) => {
        const p = req.principal!;
        const own = (e: LedgerEntry) => isOperator(p.role) || d.providerOf(e.agentId) === p.provider;
        const [payouts, fees] = await Promise.all([
          d.ledger.entries(ledgerFilters.allPayouts),
          isOperator(p.role) ? d.ledger.entries(ledgerFilters.allFees) : Promise.resolve([]),
        ]);
        const provider = (e: LedgerEntry) => d.providerOf(e.agentId) || "(unknown provider)";
        return {
          status: 200,
          json: {
            atMs: d.now(),
            series: moneySeries(payouts.filter(own), provider, d.now()),
            fees: moneySeries(fees, () => "platform fees", d.now()),
          },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/console/policy",
      access: OPERATORS,
      summary: "The active placement policy (profile, weights as JSON, who set it) and the known profiles",
      handle: () => {
        const p = d.policy.get();
        return {
          status: 200,
          json: { ...p, profileDocument: JSON.parse(p.profileJson) as unknown },
        };
      },
    },
  ];
}
