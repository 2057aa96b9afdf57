/**
 * Every HTTP route of the scheduler, composed in one place (one line per room), so the edge and the security suite
 * see the same list. A room adds `...myRoutes(deps)` here and the fields it needs to HttpRouteDeps.
 */
import { type ConsoleRouteDeps, consoleRoutes } from "../console/routes.js";
import { type ReplayRouteDeps, replayRoutes } from "../replay/index.js";
import { scheduleRoutes } from "../schedules/http.js";
import type { ScheduleApi } from "../schedules/schedule-api.js";
import { serviceRoutes } from "../services/http.js";
import type { ServiceApi } from "../services/service-api.js";
import { type CoreRouteDeps, coreRoutes } from "./core-routes.js";
import type { HttpRoute } from "./route.js";

export interface HttpRouteDeps extends Omit<CoreRouteDeps, "routes">, ConsoleRouteDeps, ReplayRouteDeps {
  services: Pick<ServiceApi, "endpointSets">;
  schedules: Pick<ScheduleApi, "trigger">;
}

export function httpRoutes(d: HttpRouteDeps): HttpRoute[] {
  const routes: HttpRoute[] = [
    ...coreRoutes({ ...d, routes: () => routes }),
    // rooms: one line each
    ...consoleRoutes(d),
    ...replayRoutes(d),
    ...serviceRoutes(d),
    ...scheduleRoutes(d),
  ];
  return routes;
}
