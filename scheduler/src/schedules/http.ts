/**
 * The schedules' HTTP route: a webhook that triggers a run (a monitoring system, a data pipeline's "new data"
 * hook). It answers 202 once the trigger is queued durably; the leader's controller starts the run under the
 * schedule's concurrency policy. An `Idempotency-Key` header (or `triggerId` in the JSON body) makes retries of
 * the same webhook one trigger. Tenant-scoped like the gRPC call; audited as a mutation.
 */
import { actingTenant } from "@capa/auth";
import { HttpError, type HttpRoute } from "../http/route.js";
import type { ScheduleApi } from "./schedule-api.js";

export function scheduleRoutes(d: { schedules: Pick<ScheduleApi, "trigger"> }): HttpRoute[] {
  return [
    {
      method: "POST",
      path: "/api/v1/schedules/:schedule/trigger",
      access: ["tenant", "operator", "admin"],
      mutating: true,
      summary: "Webhook: queue a run of a schedule (202; Idempotency-Key or body {triggerId, reason})",
      async handle(req) {
        const tenant = actingTenant(req.principal!, req.query.get("tenant") ?? "", "");
        const body = req.json();
        if (typeof body !== "object" || body === null || Array.isArray(body))
          throw new HttpError(400, "INVALID_ARGUMENT", "body: must be a JSON object ({triggerId, reason}) or empty");
        const { triggerId, reason } = body as { triggerId?: unknown; reason?: unknown };
        for (const [field, value] of [
          ["triggerId", triggerId],
          ["reason", reason],
        ] as const)
          if (value !== undefined && typeof value !== "string")
            throw new HttpError(400, "INVALID_ARGUMENT", `${field}: must be a string`);
        const header = req.headers["idempotency-key"];
        const id = (typeof header === "string" ? header : "") || (triggerId as string | undefined) || "";
        const result = await d.schedules.trigger(tenant, req.params.schedule!, {
          triggerId: id,
          reason: (reason as string | undefined) || "webhook",
        });
        return { status: 202, json: { schedule: req.params.schedule, tenant, ...result } };
      },
    },
  ];
}
