/**
 * The services' HTTP routes: the live endpoint set of a service, for load balancers, service meshes and scripts
 * that speak HTTP rather than gRPC. Tenant-scoped: the tenant comes from the credential (operators name it with
 * `?tenant=`); another tenant's service answers 404 like one that does not exist.
 */
import { actingTenant } from "@capa/auth";
import type { HttpRoute } from "../http/route.js";
import type { ServiceApi } from "./service-api.js";

export function serviceRoutes(d: { services: Pick<ServiceApi, "endpointSets"> }): HttpRoute[] {
  return [
    {
      method: "GET",
      path: "/api/v1/services/:service/endpoints",
      access: ["tenant", "operator", "admin"],
      summary: "A service's live endpoint set (ready replicas by region; ?region= for one region)",
      async handle(req) {
        const tenant = actingTenant(req.principal!, req.query.get("tenant") ?? "", "");
        const service = req.params.service!;
        const sets = await d.services.endpointSets(tenant, service, req.query.get("region") ?? "");
        return {
          status: 200,
          json: {
            service,
            tenant,
            updatedAtMs: Math.max(0, ...sets.map((s) => s.updatedAtMs)),
            endpoints: sets.flatMap((s) =>
              s.endpoints.map((e) => ({
                region: e.region,
                url: `http://${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`,
                host: e.host,
                port: e.port,
                taskId: e.taskId,
                jobId: e.jobId,
                agentId: e.agentId,
                revision: e.revision,
                trafficPercent: e.trafficPercent,
              })),
            ),
          },
        };
      },
    },
  ];
}
