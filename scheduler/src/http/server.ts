/**
 * One HTTP(S) server for every route of the scheduler. It authenticates `Authorization: Bearer <capa API key>` with
 * the same in-memory key table as the gRPC guard, checks the route's roles, caps the body, audits mutating routes,
 * and maps errors the way the gRPC edge does (same codes, same messages), so HTTP is never a side door.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { KeyTable, Principal } from "@capa/auth";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/audit-log.js";
import { mapError } from "../grpc/errors.js";
import type { SchedulerMetrics } from "../metrics.js";
import { HttpError, type HttpRequest, type HttpResponse, type HttpRoute } from "./route.js";
import { isHttpMethod, Router } from "./router.js";

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface HttpEdgeConfig {
  host: string;
  port: number;
  routes: readonly HttpRoute[];
  keys: KeyTable;
  logger: Logger;
  now: () => number;
  metrics?: SchedulerMetrics;
  audit?: Pick<AuditLog, "append">;
  /** Serve HTTPS with the gRPC edge's certificate (and require client certificates when a client CA is set). */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  bodyLimit?: number;
}

export interface HttpEdge {
  /** "host:port" */
  address: string;
  /** "http://host:port" or "https://…" */
  url: string;
  routes: readonly HttpRoute[];
  close(): Promise<void>;
}

/** gRPC status → HTTP status, for errors the domain raised (the same mapping for every route). */
const HTTP_STATUS: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.UNAUTHENTICATED]: 401,
  [status.PERMISSION_DENIED]: 403,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.ABORTED]: 409,
  [status.FAILED_PRECONDITION]: 412,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.UNAVAILABLE]: 503,
};

export async function startHttpEdge(cfg: HttpEdgeConfig): Promise<HttpEdge> {
  const router = new Router(cfg.routes);
  const limit = cfg.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void serve(req, res, router, limit, cfg);
  };
  const server: Server = cfg.tls
    ? createHttpsServer(
        {
          cert: readFileSync(cfg.tls.certFile),
          key: readFileSync(cfg.tls.keyFile),
          ...(cfg.tls.clientCaFile
            ? { ca: readFileSync(cfg.tls.clientCaFile), requestCert: true, rejectUnauthorized: true }
            : {}),
        },
        onRequest,
      )
    : createHttpServer(onRequest);
  // A slow client must not hold a socket forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, cfg.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  return {
    address: `${host}:${port}`,
    url: `${cfg.tls ? "https" : "http"}://${host}:${port}`,
    routes: cfg.routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  router: Router,
  limit: number,
  cfg: HttpEdgeConfig,
): Promise<void> {
  let route: HttpRoute | undefined;
  let principal: Principal | undefined;
  let answer: HttpResponse;
  try {
    const url = new URL(req.url ?? "/", "http://edge");
    const method = req.method;
    if (!isHttpMethod(method)) throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not served`);
    const matched = router.match(method, url.pathname);
    route = matched.route;
    principal = authenticate(req, route, cfg.keys);
    authorize(route, principal);
    const body = await readBody(req, limit);
    const request: HttpRequest = {
      method,
      path: url.pathname,
      params: matched.params,
      query: url.searchParams,
      headers: req.headers,
      principal,
      body,
      json: () => parseJson(body),
    };
    answer = await route.handle(request);
  } catch (err) {
    answer = errorAnswer(err, cfg.logger, route);
  }
  send(res, answer);
  const label = route ? `${route.method} ${route.path}` : "unmatched";
  cfg.metrics?.httpRequests.inc({ route: label, code: String(answer.status) });
  if (route?.mutating && principal && cfg.audit)
    await cfg.audit.append({
      atMs: cfg.now(),
      keyId: principal.keyId,
      actor: principal.name,
      role: principal.role,
      tenant: principal.tenant,
      method: `HTTP ${route.method} ${route.path}`,
      target: req.url?.split("?")[0] ?? "",
      result: String(answer.status),
      detail: answer.status >= 400 ? errorMessage(answer).slice(0, 300) : "",
    });
}

/** Public routes take a valid credential when one is sent (and ignore a bad one); every other route needs one. */
function authenticate(req: IncomingMessage, route: HttpRoute, keys: KeyTable): Principal | undefined {
  const header = req.headers.authorization;
  if (route.access !== "public") return keys.authenticate(header);
  if (!header) return undefined;
  try {
    return keys.authenticate(header);
  } catch {
    return undefined;
  }
}

function authorize(route: HttpRoute, principal: Principal | undefined): void {
  if (route.access === "public" || (principal && route.access.includes(principal.role))) return;
  throw new HttpError(
    403,
    "PERMISSION_DENIED",
    `${route.method} ${route.path} is for ${route.access.join(", ")}; this credential is ${principal?.role}`,
  );
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "PAYLOAD_TOO_LARGE", `the request body is over ${limit} bytes`);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "INVALID_JSON", `the request body is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function errorAnswer(err: unknown, logger: Logger, route: HttpRoute | undefined): HttpResponse {
  if (err instanceof HttpError) {
    const headers: Record<string, string> = err.status === 401 ? { "www-authenticate": 'Bearer realm="capa"' } : {};
    return { status: err.status, headers, json: { error: { code: err.code, message: err.message } } };
  }
  const mapped = mapError(err);
  if (mapped.internal) logger.error({ err, route: route?.path }, "http route failed");
  const httpStatus = HTTP_STATUS[mapped.code] ?? 500;
  const headers: Record<string, string> = httpStatus === 401 ? { "www-authenticate": 'Bearer realm="capa"' } : {};
  return {
    status: httpStatus,
    headers,
    json: {
      error: {
        code: status[mapped.code] ?? "INTERNAL",
        message: mapped.details,
        ...(mapped.violations.length > 0 ? { violations: mapped.violations } : {}),
      },
    },
  };
}

function errorMessage(answer: HttpResponse): string {
  const e = (answer.json as { error?: { message?: string } } | undefined)?.error;
  return e?.message ?? "";
}

function send(res: ServerResponse, answer: HttpResponse): void {
  const headers: Record<string, string> = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    ...answer.headers,
  };
  let payload: string | Buffer;
  if (answer.json !== undefined) {
    payload = JSON.stringify(answer.json);
    headers["content-type"] = "application/json; charset=utf-8";
    headers["cache-control"] ??= "no-store";
  } else {
    payload = answer.body ?? "";
    headers["content-type"] = answer.contentType ?? "text/plain; charset=utf-8";
  }
  res.writeHead(answer.status, headers).end(payload);
}
