/** The edge itself, over real HTTP on loopback, with an in-memory key table and a recording audit sink. */
import { KeyTable, mintKey, type Role } from "@capa/auth";
import { ValidationError } from "@capa/domain";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEntry } from "../audit/audit-log.js";
import { HttpError, type HttpRoute } from "./route.js";
import { type HttpEdge, startHttpEdge } from "./server.js";

const keys = new KeyTable();
const tokens = {} as Record<Role, string>;
for (const role of ["tenant", "provider", "operator", "admin"] as const) {
  const k = mintKey({ role, name: `${role}-1`, tenant: "acme", provider: "gpuco", createdBy: "test", nowMs: 0 });
  keys.put(k.record);
  tokens[role] = k.token;
}
const audited: AuditEntry[] = [];

const routes: HttpRoute[] = [
  {
    method: "GET",
    path: "/open",
    access: "public",
    summary: "",
    handle: (r) => ({ status: 200, json: { who: r.principal?.role ?? null } }),
  },
  {
    method: "POST",
    path: "/api/v1/things/:name",
    access: ["tenant", "operator"],
    mutating: true,
    summary: "",
    handle: (r) => ({ status: 201, json: { name: r.params.name, body: r.json(), tenant: r.principal!.tenant } }),
  },
  {
    method: "GET",
    path: "/api/v1/fail/:how",
    access: ["operator"],
    summary: "",
    handle: (r) => {
      if (r.params.how === "validation")
        throw new ValidationError([{ field: "spec.gpus", message: "must be at least 1" }]);
      if (r.params.how === "http") throw new HttpError(409, "BUSY", "try later");
      throw new Error("secret internals");
    },
  },
];

let edge: HttpEdge;
beforeAll(async () => {
  edge = await startHttpEdge({
    host: "127.0.0.1",
    port: 0,
    routes,
    keys,
    logger: pino({ level: "silent" }),
    now: () => 42,
    audit: { append: async (e) => void audited.push(e) },
    bodyLimit: 1024,
  });
});
afterAll(() => edge.close());

async function call(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  const res = await fetch(`${edge.url}${path}`, { ...init, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe("HTTP edge", () => {
  it("serves a public route without a credential and ignores a bad one", async () => {
    expect((await call("/open")).body).toEqual({ who: null });
    expect((await call("/open", { token: "capa_nope_nope" })).body).toEqual({ who: null });
    expect((await call("/open", { token: tokens.provider })).body).toEqual({ who: "provider" });
  });

  it("answers 401 (with WWW-Authenticate) without a valid key and 403 for a role the route does not list", async () => {
    const none = await call("/api/v1/things/x", { method: "POST" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(none.body.error.code).toBe("UNAUTHENTICATED");
    expect((await call("/api/v1/things/x", { method: "POST", token: "capa_0011223344556677_bad" })).status).toBe(401);
    const denied = await call("/api/v1/things/x", { method: "POST", token: tokens.provider });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toMatch(/tenant, operator; this credential is provider/);
  });

  it("passes params, JSON body and principal to the handler, and audits the mutation (allowed and refused)", async () => {
    audited.length = 0;
    const ok = await call("/api/v1/things/a%20b", { method: "POST", token: tokens.tenant, body: '{"x":1}' });
    expect(ok).toMatchObject({ status: 201, body: { name: "a b", body: { x: 1 }, tenant: "acme" } });
    await call("/api/v1/things/y", { method: "POST", token: tokens.provider });
    expect(audited.map((e) => [e.method, e.role, e.result, e.target])).toEqual([
      ["HTTP POST /api/v1/things/:name", "tenant", "201", "/api/v1/things/a%20b"],
      ["HTTP POST /api/v1/things/:name", "provider", "403", "/api/v1/things/y"],
    ]);
  });

  it("maps errors like the gRPC edge: field violations, HttpError codes, and no internals leaked", async () => {
    const v = await call("/api/v1/fail/validation", { token: tokens.operator });
    expect(v.status).toBe(400);
    expect(v.body.error).toMatchObject({ code: "INVALID_ARGUMENT", violations: [{ field: "spec.gpus" }] });
    expect(await call("/api/v1/fail/http", { token: tokens.admin })).toMatchObject({ status: 403 });
    expect(await call("/api/v1/fail/http", { token: tokens.operator })).toMatchObject({
      status: 409,
      body: { error: { code: "BUSY", message: "try later" } },
    });
    const internal = await call("/api/v1/fail/boom", { token: tokens.operator });
    expect(internal).toMatchObject({ status: 500, body: { error: { code: "INTERNAL", message: "internal error" } } });
  });

  it("refuses bad JSON (400), a body over the limit (413), unknown paths (404) and methods (405)", async () => {
    expect((await call("/api/v1/things/x", { method: "POST", token: tokens.tenant, body: "{" })).body.error.code).toBe(
      "INVALID_JSON",
    );
    const big = await call("/api/v1/things/x", { method: "POST", token: tokens.tenant, body: "x".repeat(2048) });
    expect(big.status).toBe(413);
    expect((await call("/nowhere")).status).toBe(404);
    expect((await call("/open", { method: "DELETE" })).status).toBe(405);
    expect((await call("/open", { method: "PATCH" })).status).toBe(405);
  });

  it("sends nosniff and no-store on JSON answers", async () => {
    const r = await call("/open");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("cache-control")).toBe("no-store");
  });
});
