/** Pure path matching for the HTTP edge: patterns compiled once, matched segment by segment. */
import { HttpError, type HttpMethod, type HttpRoute } from "./route.js";

interface Compiled {
  route: HttpRoute;
  segments: string[];
  rest: boolean;
}

export interface Match {
  route: HttpRoute;
  params: Record<string, string>;
}

export class Router {
  private readonly compiled: Compiled[];

  constructor(routes: readonly HttpRoute[]) {
    const seen = new Set<string>();
    this.compiled = routes.map((route) => {
      if (!route.path.startsWith("/")) throw new Error(`http route ${route.path}: must start with /`);
      const key = `${route.method} ${route.path.replace(/:[^/]+/g, ":")}`;
      if (seen.has(key)) throw new Error(`http route ${route.method} ${route.path}: declared twice`);
      seen.add(key);
      const segments = split(route.path);
      const rest = segments.at(-1) === "*";
      if (segments.slice(0, -1).includes("*")) throw new Error(`http route ${route.path}: "*" only at the end`);
      return { route, segments: rest ? segments.slice(0, -1) : segments, rest };
    });
  }

  /**
   * The route for a request. Literal segments win over ":name" ones (so `/jobs/new` beats `/jobs/:id`); a path that
   * matches only under another method is 405; none is 404.
   */
  match(method: string, path: string): Match {
    const parts = split(path).map(decode);
    let best: { c: Compiled; params: Record<string, string>; score: number } | undefined;
    let otherMethod = false;
    for (const c of this.compiled) {
      const params = matchSegments(c, parts);
      if (!params) continue;
      if (c.route.method !== method) {
        otherMethod = true;
        continue;
      }
      const score = c.segments.filter((s) => !s.startsWith(":")).length * 2 + (c.rest ? 0 : 1);
      if (!best || score > best.score) best = { c, params, score };
    }
    if (best) return { route: best.c.route, params: best.params };
    if (otherMethod) throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed on ${path}`);
    throw new HttpError(404, "NOT_FOUND", `no route for ${method} ${path}`);
  }
}

export function isHttpMethod(m: string | undefined): m is HttpMethod {
  return m === "GET" || m === "POST" || m === "PUT" || m === "DELETE";
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "BAD_PATH", `path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
  }
}

function matchSegments(c: Compiled, parts: string[]): Record<string, string> | undefined {
  if (c.rest ? parts.length < c.segments.length : parts.length !== c.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < c.segments.length; i++) {
    const s = c.segments[i]!;
    if (s.startsWith(":")) params[s.slice(1)] = parts[i]!;
    else if (s !== parts[i]) return undefined;
  }
  if (c.rest) params["*"] = parts.slice(c.segments.length).join("/");
  return params;
}
