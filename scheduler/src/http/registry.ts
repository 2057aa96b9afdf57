/**
 * Every HTTP route of the scheduler, composed in one place (one line per room), so the edge and the security suite
 * see the same list. A room adds `...myRoutes(deps)` here and the fields it needs to HttpRouteDeps.
 */
import { type ConsoleRouteDeps, consoleRoutes } from "../console/routes.js";
import { type ReplayRouteDeps, replayRoutes } from "../replay/index.js";
import { type CoreRouteDeps, coreRoutes } from "./core-routes.js";
import type { HttpRoute } from "./route.js";

export interface HttpRouteDeps extends Omit<CoreRouteDeps, "routes">, ConsoleRouteDeps, ReplayRouteDeps {}

export function httpRoutes(d: HttpRouteDeps): HttpRoute[] {
  const routes: HttpRoute[] = [
    ...coreRoutes({ ...d, routes: () => routes }),
    // rooms: one line each, e.g. ...serviceRoutes(d),
    ...consoleRoutes(d),
    ...replayRoutes(d),
  ];
  return routes;
}
