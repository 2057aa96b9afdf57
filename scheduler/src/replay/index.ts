/** What-if replays inside the scheduler: OperatorService.Replay and POST /api/v1/replay over @capa/replay. */
export { GRPC_REPLAY_FIELDS, JSON_REPLAY_FIELDS, REPLAY_LIMITS, type ReplayRequest } from "./request.js";
export { type ReplayRouteDeps, replayRoutes } from "./routes.js";
export { DEFAULT_REPLAY_TIMEOUT_MS, type ReplayOutput, ReplayRunner } from "./runner.js";
export { ReplayService } from "./service.js";
