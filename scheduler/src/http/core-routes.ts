/** The edge's own routes: health for probes, who-am-I for clients, and the route list for operators. */
import type { HttpRoute } from "./route.js";

export interface CoreRouteDeps {
  schedulerId: string;
  isLeader: () => boolean;
  /** Every route served (filled in once the registry has composed them). */
  routes: () => readonly HttpRoute[];
}

const ANY_ROLE = ["tenant", "provider", "operator", "admin"] as const;

export function coreRoutes(d: CoreRouteDeps): HttpRoute[] {
  return [
    {
      method: "GET",
      path: "/healthz",
      access: "public",
      summary: "Liveness for probes and load balancers: 200 while the process serves",
      handle: () => ({ status: 200, json: { status: "SERVING", leader: d.isLeader() } }),
    },
    {
      method: "GET",
      path: "/api/v1/whoami",
      access: ANY_ROLE,
      summary: "The caller's identity as its credential says (never the secret)",
      handle: (req) => {
        const p = req.principal!;
        return {
          status: 200,
          json: { keyId: p.keyId, name: p.name, role: p.role, tenant: p.tenant, provider: p.provider },
        };
      },
    },
    {
      method: "GET",
      path: "/api/v1/routes",
      access: ["operator", "admin"],
      summary: "Every HTTP route this scheduler serves, with who may call it",
      handle: () => ({
        status: 200,
        json: {
          schedulerId: d.schedulerId,
          routes: d.routes().map((r) => ({
            method: r.method,
            path: r.path,
            access: r.access,
            mutating: r.mutating === true,
            summary: r.summary,
          })),
        },
      }),
    },
  ];
}
