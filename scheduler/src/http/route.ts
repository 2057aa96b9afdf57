/**
 * The scheduler's HTTP edge: routes are data (method, path pattern, who may call, whether the call is audited), so
 * one place authenticates and authorises every route and the security suite can walk them all.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Principal, Role } from "@capa/auth";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** "public": no credential (never tenant data: health, the console's static shell). Else the roles allowed. */
export type HttpAccess = "public" | readonly Role[];

export interface HttpRequest {
  method: HttpMethod;
  /** The path without the query string, e.g. "/api/v1/services/web/endpoints". */
  path: string;
  /** Values of the pattern's ":name" segments, URI-decoded. */
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The authenticated caller; undefined only on public routes called without a credential. */
  principal: Principal | undefined;
  /** The request body (capped at the edge's body limit). */
  body: Buffer;
  /** The body parsed as JSON; HttpError 400 when it is not JSON. An empty body is `{}`. */
  json(): unknown;
}

export interface HttpResponse {
  status: number;
  /** Serialised as application/json. */
  json?: unknown;
  /** Sent as is with `contentType` (default text/plain). Ignored when `json` is set. */
  body?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface HttpRoute {
  method: HttpMethod;
  /** Literal segments and ":name" segments (one segment each); a trailing "*" matches the rest (params["*"]). */
  path: string;
  access: HttpAccess;
  /** Audited like a mutating gRPC call (allowed or refused). */
  mutating?: boolean;
  /** One line for the route list and the docs. */
  summary: string;
  handle(req: HttpRequest): Promise<HttpResponse> | HttpResponse;
}

/** An answer with a status and a machine-readable code, sent as `{"error": {"code", "message"}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HttpError";
  }
}
