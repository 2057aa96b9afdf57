/** POST /api/v1/replay: OperatorService.Replay over HTTP (the console's replay comparison view calls it). */
import { HttpError, type HttpRoute } from "../http/route.js";
import { JSON_REPLAY_FIELDS, type ReplayRequest } from "./request.js";
import type { ReplayService } from "./service.js";

export interface ReplayRouteDeps {
  replays: ReplayService;
}

/** The JSON body as a request: absent fields take the gRPC defaults; a field of the wrong type is 400. */
function requestOf(body: unknown): ReplayRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new HttpError(400, "INVALID_ARGUMENT", "the body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (k: keyof ReplayRequest) => {
    const v = b[k] ?? "";
    if (typeof v !== "string") throw new HttpError(400, "INVALID_ARGUMENT", `${k}: must be a string`);
    return v;
  };
  const num = (k: keyof ReplayRequest) => {
    const v = b[k] ?? 0;
    if (typeof v !== "number") throw new HttpError(400, "INVALID_ARGUMENT", `${k}: must be a number`);
    return v;
  };
  const list = (k: keyof ReplayRequest) => {
    const v = b[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      throw new HttpError(400, "INVALID_ARGUMENT", `${k}: must be a list of strings`);
    return v as string[];
  };
  return {
    traceCsv: str("traceCsv"),
    traceFormat: str("traceFormat"),
    fleetCsv: str("fleetCsv"),
    agents: num("agents"),
    activeProfile: str("activeProfile"),
    profiles: list("profiles"),
    baselines: list("baselines"),
    seed: num("seed"),
    limit: num("limit"),
    plotSvg: b.plotSvg === true,
  };
}

export function replayRoutes(d: ReplayRouteDeps): HttpRoute[] {
  return [
    {
      method: "POST",
      path: "/api/v1/replay",
      access: ["operator", "admin"],
      summary: "What-if replay of an uploaded trace (and fleet) through the placement engine: OperatorService.Replay",
      handle: async (req) => ({ status: 200, json: await d.replays.run(requestOf(req.json()), JSON_REPLAY_FIELDS) }),
    },
  ];
}
