/**
 * The replay service both edges call: validates a request against the engine's profiles (the active one by
 * default) and runs it on the runner. The gRPC handler and the HTTP route only convert.
 */
import type { PlacementEngineApi } from "../planner/engine.js";
import { type ReplayFieldNames, type ReplayRequest, replayJobInput } from "./request.js";
import type { ReplayOutput, ReplayRunner } from "./runner.js";

export class ReplayService {
  constructor(
    private readonly engine: PlacementEngineApi,
    private readonly runner: ReplayRunner,
  ) {}

  run(req: ReplayRequest, fields: ReplayFieldNames): Promise<ReplayOutput> {
    const input = replayJobInput(req, this.engine.profiles(), this.engine.activeProfile(), fields);
    return this.runner.run(input, fields);
  }
}
