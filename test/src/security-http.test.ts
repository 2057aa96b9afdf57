/**
 * The HTTP edge's security suite. It walks every route the scheduler serves (the registry, not a hand-kept list),
 * so a new route is covered the moment it is registered:
 * - a public route must be named in PUBLIC below (a conscious decision, reviewed here: public routes carry no
 *   tenant data);
 * - every other route answers 401 without a key, with a malformed key and with a revoked key, and 403 for each role
 *   it does not list;
 * - routes that serve tenant data add a cross-tenant row in CROSS_TENANT (another tenant's object is 404).
 */

import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, httpCall, rpc, spec, startHarness } from "./scheduler-harness.js";

/** Routes anyone may call, and why that is safe. */
const PUBLIC: Record<string, string> = {
  "GET /healthz": "liveness for probes: the process serves and whether it leads; no data",
  "GET /console/*":
    "the web console's static shell from a fixed file list (page, script, style, chart library); no data: every data call it makes carries the viewer's key",
};

const ROLES = ["tenant", "provider", "operator", "admin"] as const;

let h: Harness;
const tokens = {} as Record<(typeof ROLES)[number], string>;
let revoked: string;

beforeAll(async () => {
  h = await startHarness();
  tokens.tenant = await h.mintKey("tenant", { tenant: "acme" });
  tokens.provider = await h.mintKey("provider", { provider: "gpuco" });
  tokens.operator = await h.mintKey("operator");
  tokens.admin = h.adminToken;
  revoked = await h.mintKey("tenant", { tenant: "acme", name: "to-revoke" });
  const keyId = revoked.split("_")[1]!;
  await rpc((cb) => h.keys.revokeKey({ keyId }, cb));
});
afterAll(() => h?.stop());

/** A concrete path for a pattern: every parameter becomes "probe". */
const concrete = (pattern: string) => pattern.replace(/:[^/]+/g, "probe").replace(/\*$/, "probe");

describe("HTTP edge: every route is authorised", () => {
  it("serves routes, and every public one is a reviewed exception", () => {
    const routes = h.scheduler.httpRoutes;
    expect(routes.length).toBeGreaterThan(0);
    const publicRoutes = routes.filter((r) => r.access === "public").map((r) => `${r.method} ${r.path}`);
    expect(publicRoutes.filter((r) => !(r in PUBLIC))).toEqual([]);
    for (const r of routes) expect(r.summary.length, `${r.method} ${r.path} has a summary`).toBeGreaterThan(0);
  });

  it("answers 401 without a key, with a malformed key and with a revoked key, on every non-public route", async () => {
    const leaks: string[] = [];
    for (const r of h.scheduler.httpRoutes.filter((x) => x.access !== "public")) {
      const path = concrete(r.path);
      for (const [label, token] of [
        ["no key", undefined],
        ["malformed", "not-a-capa-key"],
        ["unknown", "capa_0011223344556677_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
        ["revoked", revoked],
      ] as const) {
        const res = await httpCall(h, path, { method: r.method, ...(token ? { token } : {}) });
        if (res.status !== 401) leaks.push(`${r.method} ${r.path} (${label}): ${res.status}`);
        else expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
    }
    expect(leaks).toEqual([]);
  });

  it("answers 403 for every role a route does not list, and lets the listed roles through", async () => {
    const wrong: string[] = [];
    for (const r of h.scheduler.httpRoutes.filter((x) => x.access !== "public")) {
      const allowed = r.access as readonly string[];
      for (const role of ROLES) {
        const res = await httpCall(h, concrete(r.path), { method: r.method, token: tokens[role] });
        const refused = res.status === 401 || res.status === 403;
        if (allowed.includes(role) === refused) wrong.push(`${r.method} ${r.path} as ${role}: ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("answers who the caller is, never with the secret", async () => {
    const me = await httpCall(h, "/api/v1/whoami", { token: tokens.tenant });
    expect(me.body).toMatchObject({ role: "tenant", tenant: "acme" });
    // The secret is base64url, which may itself hold "_": it is everything after "capa_<keyId>_".
    const secret = tokens.tenant.split("_").slice(2).join("_");
    expect(secret).toHaveLength(43);
    expect(me.text).not.toContain(secret);
  });

  it("lists its routes to operators, with their access", async () => {
    const list = await httpCall(h, "/api/v1/routes", { token: tokens.operator });
    const paths = (list.body as { routes: { method: string; path: string }[] }).routes.map(
      (r) => `${r.method} ${r.path}`,
    );
    expect(paths).toEqual(h.scheduler.httpRoutes.map((r) => `${r.method} ${r.path}`));
  });

  it("keeps every tenant to its own services and schedules (CROSS_TENANT): another tenant's is 404", async () => {
    // The victim's service and schedule, made over gRPC as the admin acting for tenant victim.
    await rpc((cb) =>
      h.services.applyService(
        {
          tenant: "victim",
          spec: pb.ServiceSpec.fromPartial({
            name: "victim-svc",
            template: { command: ["serve"], env: {}, workingDir: "", killGraceSeconds: 2 },
            regions: [{ region: "eu-west", minReplicas: 0, maxReplicas: 1 }],
          }),
        },
        cb,
      ),
    );
    await rpc((cb) =>
      h.schedules.applySchedule(
        {
          tenant: "victim",
          spec: pb.ScheduleSpec.fromPartial({ name: "victim-nightly", job: spec({ gpusPerReplica: 0 }, ["train"]) }),
        },
        cb,
      ),
    );
    const victim = await h.mintKey("tenant", { tenant: "victim" });
    const mallory = tokens.tenant; // tenant acme
    const endpoints = "/api/v1/services/victim-svc/endpoints";
    const trigger = "/api/v1/schedules/victim-nightly/trigger";
    const CROSS_TENANT: [string, string, number][] = [
      ["GET", endpoints, 404],
      ["GET", `${endpoints}?tenant=victim`, 403],
      ["POST", trigger, 404],
      ["POST", `${trigger}?tenant=victim`, 403],
    ];
    for (const [method, path, expected] of CROSS_TENANT) {
      const res = await httpCall(h, path, { method, token: mallory, ...(method === "POST" ? { body: {} } : {}) });
      expect(`${method} ${path}: ${res.status}`).toBe(`${method} ${path}: ${expected}`);
      expect(res.text).not.toContain('victim-svc"');
    }
    // Another tenant's object reads exactly like one that does not exist.
    const missing = await httpCall(h, "/api/v1/services/nope/endpoints", { token: mallory });
    const theirs = await httpCall(h, endpoints, { token: mallory });
    expect(theirs.text.replace("victim-svc", "X")).toBe(missing.text.replace("nope", "X"));
    // The owner can; an operator names the tenant.
    const own = await httpCall(h, endpoints, { token: victim });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ service: "victim-svc", tenant: "victim", endpoints: [] });
    expect((await httpCall(h, `${endpoints}?tenant=victim`, { token: tokens.operator })).status).toBe(200);
    const hook = await httpCall(h, trigger, {
      method: "POST",
      token: victim,
      headers: { "idempotency-key": "hook-1", "content-type": "application/json" },
      body: { reason: "new data landed" },
    });
    expect(hook.status).toBe(202);
    expect(hook.body).toMatchObject({ triggerId: "hook-1", queued: true });
    const again = await httpCall(h, trigger, {
      method: "POST",
      token: victim,
      headers: { "idempotency-key": "hook-1" },
    });
    expect(again.body).toMatchObject({ triggerId: "hook-1", queued: false });
    const bad = await httpCall(h, trigger, { method: "POST", token: victim, body: { reason: 7 } });
    expect(bad.status).toBe(400);
    // Only the owner's trigger reached the schedule (queued, or already a run).
    const s = (
      await rpc<pb.GetScheduleResponse>((cb) =>
        h.schedules.getSchedule({ tenant: "victim", name: "victim-nightly" }, cb),
      )
    ).schedule!;
    expect(s.pendingTriggers + s.runs.length).toBe(1);
    expect(s.runs.every((r) => r.triggerId === "hook-1")).toBe(true);
  });

  it("refuses hostile requests with clear errors and never 500", async () => {
    expect((await httpCall(h, "/no/such/route")).status).toBe(404);
    expect((await httpCall(h, "/healthz", { method: "DELETE" })).status).toBe(405);
    expect((await httpCall(h, "/api/v1/whoami/%E0%A4%A", { token: tokens.tenant })).status).toBe(400);
  });
});

describe("HTTP edge: the console's data routes are scoped to the caller's tenant", () => {
  let acmeJob: string;
  let globexJob: string;
  const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
  const listed = (body: unknown) => {
    const v = body as Record<"queue" | "running" | "recent", { id: string }[]>;
    return [...ids(v.queue), ...ids(v.running), ...ids(v.recent)];
  };

  beforeAll(async () => {
    const submitAs = async (tenant: string) => {
      const c = await h.asTenant(tenant);
      const res = await rpc<pb.SubmitJobResponse>((cb) =>
        c.jobs.submitJob({ requestId: "", tenant: "", spec: spec({ name: `${tenant}-job` }) }, cb),
      );
      return res.job!.id;
    };
    acmeJob = await submitAs("acme");
    globexJob = await submitAs("globex");
    // Both jobs wait (no agents): wait until the planner has recorded a decision for each.
    await waitFor(
      async () => {
        const d = await httpCall(h, "/api/v1/console/decisions", { token: tokens.operator });
        const jobIds = (d.body as { decisions: { jobId: string }[] }).decisions.map((x) => x.jobId);
        return jobIds.includes(acmeJob) && jobIds.includes(globexJob);
      },
      { what: "placement decisions for both tenants' jobs", timeoutMs: 50_000 },
    );
  }, 90_000);

  it("GET /api/v1/console/jobs: a tenant lists only its own jobs; naming another tenant is 403; operators see all", async () => {
    const mine = await httpCall(h, "/api/v1/console/jobs", { token: tokens.tenant });
    expect(mine.status).toBe(200);
    expect(listed(mine.body)).toContain(acmeJob);
    expect(listed(mine.body)).not.toContain(globexJob);
    expect((await httpCall(h, "/api/v1/console/jobs?tenant=globex", { token: tokens.tenant })).status).toBe(403);
    const all = await httpCall(h, "/api/v1/console/jobs", { token: tokens.operator });
    expect(listed(all.body)).toEqual(expect.arrayContaining([acmeJob, globexJob]));
    const one = await httpCall(h, "/api/v1/console/jobs?tenant=globex", { token: tokens.operator });
    expect(listed(one.body)).toEqual([globexJob]);
  });

  it("GET /api/v1/console/jobs/:jobId: another tenant's job is 404, like a missing one", async () => {
    expect((await httpCall(h, `/api/v1/console/jobs/${acmeJob}`, { token: tokens.tenant })).status).toBe(200);
    const theirs = await httpCall(h, `/api/v1/console/jobs/${globexJob}`, { token: tokens.tenant });
    const missing = await httpCall(h, "/api/v1/console/jobs/jnosuchjob", { token: tokens.tenant });
    expect(theirs.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(theirs.text).not.toContain("globex");
    expect((await httpCall(h, `/api/v1/console/jobs/${globexJob}`, { token: tokens.operator })).status).toBe(200);
  });

  it("GET /api/v1/console/decisions: a tenant sees only its own jobs' decisions", async () => {
    const d = await httpCall(h, "/api/v1/console/decisions", { token: tokens.tenant });
    const rows = (d.body as { decisions: { jobId: string; tenant: string }[] }).decisions;
    expect(rows.map((r) => r.jobId)).toContain(acmeJob);
    expect(rows.filter((r) => r.tenant !== "acme")).toEqual([]);
    expect((await httpCall(h, "/api/v1/console/decisions?tenant=globex", { token: tokens.tenant })).status).toBe(403);
  });

  it("GET /api/v1/console/spend: a tenant's own spend only; naming another tenant is 403", async () => {
    const s = await httpCall(h, "/api/v1/console/spend", { token: tokens.tenant });
    expect(s.status).toBe(200);
    expect((s.body as { tenant: string }).tenant).toBe("acme");
    expect((await httpCall(h, "/api/v1/console/spend?tenant=globex", { token: tokens.tenant })).status).toBe(403);
  });

  it("GET /api/v1/console/fleet: agents are listed to operators only (tenants get the region/model cells)", async () => {
    const t = await httpCall(h, "/api/v1/console/fleet", { token: tokens.tenant });
    expect(t.body).toHaveProperty("cells");
    expect(t.body).not.toHaveProperty("agents");
    expect(await httpCall(h, "/api/v1/console/fleet", { token: tokens.operator })).toMatchObject({
      body: { agents: [] },
    });
  });

  it("GET /console/*: serves only the shell's own files, with a script policy", async () => {
    const page = await httpCall(h, "/console/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect((await httpCall(h, "/console/vendor/vega.min.js")).status).toBe(200);
    for (const probe of ["/console/../package.json", "/console/%2e%2e/package.json", "/console/static.ts"])
      expect((await httpCall(h, probe)).status, probe).toBe(404);
  });
});
