/**
 * The schedules room's wiring: its KV bucket, the leader-only controller loop and the gRPC handlers.
 * scheduler.ts only calls `startSchedules`, mounts the handlers and hands `api.trigger` to whoever fires
 * triggers (the services' drift rule, the HTTP webhook).
 */
import { BUCKETS, jsonCodec, jsPlacement, type Store, type StoreLayout, TypedKv } from "@capa/bus";
import type { JobSpec } from "@capa/domain";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import type { KnownGpuModels } from "../grpc/edge.js";
import type { EdgeContext } from "../grpc/unary.js";
import type { JobService } from "../jobs/job-service.js";
import { leaderLoop } from "../leader/leader-loop.js";
import type { JobRepo } from "../store/job-repo.js";
import { ScheduleController } from "./controller.js";
import { scheduleHandlers } from "./grpc.js";
import type { ScheduleRecord } from "./model.js";
import { ScheduleApi } from "./schedule-api.js";

export { type DriftFire, driftTriggerId, retrainOnDrift } from "./drift.js";
export { ScheduleApi } from "./schedule-api.js";

export interface SchedulesDeps {
  store: Store;
  layout: Pick<StoreLayout, "replicas" | "placementCluster">;
  jobs: JobService;
  repo: JobRepo;
  edge: EdgeContext;
  isLeader: () => boolean;
  logger: Logger;
  now: () => number;
  knownGpuModels: KnownGpuModels;
  admit: (tenant: string, spec: JobSpec) => JobSpec;
  /** Controller period (default 500 ms): the resolution of cron fires and of trigger → run. */
  tickMs?: number;
}

export async function startSchedules(d: SchedulesDeps) {
  const placement = jsPlacement(d.layout.placementCluster);
  const kv = await new Kvm(d.store.js).create(BUCKETS.schedules, {
    storage: "file",
    history: 5,
    replicas: d.layout.replicas,
    ...(placement ? { placement } : {}),
  });
  const schedules = new TypedKv(kv, jsonCodec<ScheduleRecord>());
  const log = d.logger.child({ room: "schedules" });
  const api = new ScheduleApi(schedules, d.now);
  const controller = new ScheduleController({
    schedules,
    jobs: d.jobs,
    repo: d.repo,
    logger: log,
    now: d.now,
    admit: d.admit,
  });
  const stop = leaderLoop("schedule controller", () => controller.tick(), {
    isLeader: d.isLeader,
    periodMs: d.tickMs ?? 500,
    logger: log,
  });
  return {
    handlers: scheduleHandlers({ edge: d.edge, api, knownGpuModels: d.knownGpuModels, admit: d.admit }),
    api,
    stop,
  };
}
