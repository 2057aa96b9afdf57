import { describe, expect, it } from "vitest";
import type { HttpRoute } from "./route.js";
import { Router } from "./router.js";

const route = (method: HttpRoute["method"], path: string): HttpRoute => ({
  method,
  path,
  access: "public",
  summary: path,
  handle: () => ({ status: 200 }),
});

const routes = [
  route("GET", "/healthz"),
  route("GET", "/api/v1/jobs/:id"),
  route("GET", "/api/v1/jobs/new"),
  route("POST", "/api/v1/jobs/:id"),
  route("GET", "/console/*"),
  route("GET", "/api/v1/services/:service/endpoints"),
];

describe("Router", () => {
  const router = new Router(routes);
  it.each([
    ["GET", "/healthz", "/healthz", {}],
    ["GET", "/healthz/", "/healthz", {}],
    ["GET", "/api/v1/jobs/j-1", "/api/v1/jobs/:id", { id: "j-1" }],
    ["GET", "/api/v1/jobs/new", "/api/v1/jobs/new", {}],
    ["POST", "/api/v1/jobs/new", "/api/v1/jobs/:id", { id: "new" }],
    ["GET", "/api/v1/jobs/a%2Fb", "/api/v1/jobs/:id", { id: "a/b" }],
    ["GET", "/console/app.js", "/console/*", { "*": "app.js" }],
    ["GET", "/console/vendor/chart.umd.js", "/console/*", { "*": "vendor/chart.umd.js" }],
    ["GET", "/api/v1/services/web/endpoints", "/api/v1/services/:service/endpoints", { service: "web" }],
  ])("%s %s → %s", (method, path, pattern, params) => {
    const m = router.match(method, path);
    expect(m.route.path).toBe(pattern);
    expect(m.route.method).toBe(method);
    expect(m.params).toEqual(params);
  });

  it.each([
    ["GET", "/nope", 404, "NOT_FOUND"],
    ["GET", "/api/v1/jobs", 404, "NOT_FOUND"],
    ["GET", "/api/v1/jobs/a/b", 404, "NOT_FOUND"],
    ["DELETE", "/api/v1/jobs/j-1", 405, "METHOD_NOT_ALLOWED"],
    ["POST", "/healthz", 405, "METHOD_NOT_ALLOWED"],
    ["GET", "/api/v1/jobs/%E0%A4%A", 400, "BAD_PATH"],
  ])("%s %s → %i %s", (method, path, status, code) => {
    expect(() => router.match(method, path)).toThrow(expect.objectContaining({ status, code }));
  });

  it("refuses a route declared twice (also under another parameter name) and a '*' before the end", () => {
    expect(() => new Router([route("GET", "/a/:x"), route("GET", "/a/:y")])).toThrow(/declared twice/);
    expect(() => new Router([route("GET", "/a/*/b")])).toThrow(/only at the end/);
    expect(() => new Router([route("GET", "a")])).toThrow(/must start with/);
  });
});
