/**
 * The services room's wiring: its two KV buckets, the readiness listener, the leader-only controller loop and
 * the gRPC handlers. scheduler.ts only calls `startServices` and mounts the handlers.
 */
import {
  BUCKETS,
  jsonCodec,
  jsPlacement,
  type NatsConnection,
  type Store,
  type StoreLayout,
  subjects,
  TypedKv,
} from "@capa/bus";
import type { Job } from "@capa/domain";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import type { EdgeContext } from "../grpc/unary.js";
import type { JobService } from "../jobs/job-service.js";
import { leaderLoop } from "../leader/leader-loop.js";
import type { JobRepo } from "../store/job-repo.js";
import { type EndpointSet, ServiceController } from "./controller.js";
import { ModelMetricsGauges, type RetrainTrigger } from "./drift.js";
import { replicaContextToPb, serviceHandlers } from "./grpc.js";
import { LoadTracker } from "./load.js";
import { followSharedLoad, shareLoad } from "./load-sharing.js";
import type { ServiceRecord } from "./model.js";
import { listenToReadiness, ReadinessTracker } from "./readiness.js";
import { ServiceApi } from "./service-api.js";

export interface ServicesDeps {
  nc: NatsConnection;
  store: Store;
  /** Where capa's JetStream state lives: the services buckets go with the rest. */
  layout: Pick<StoreLayout, "replicas" | "placementCluster">;
  jobs: JobService;
  repo: JobRepo;
  edge: EdgeContext;
  isLeader: () => boolean;
  logger: Logger;
  now: () => number;
  /** Controller period (default 500 ms). */
  tickMs?: number;
  /** A removed replica leaves the endpoint set this long before it is cancelled (default 2 s). */
  drainMs?: number;
  /** This scheduler replica's id: load reports it shares are not observed twice by itself. */
  replicaId?: string;
  /** Starts the retraining Schedule a drift policy names (see ControllerDeps.retrain). */
  retrain?: (t: RetrainTrigger) => Promise<string>;
}

export async function startServices(d: ServicesDeps) {
  const kvm = new Kvm(d.store.js);
  const placement = jsPlacement(d.layout.placementCluster);
  const opts = {
    storage: "file" as const,
    history: 5,
    replicas: d.layout.replicas,
    ...(placement ? { placement } : {}),
  };
  const [servicesKv, endpointsKv] = await Promise.all([
    kvm.create(BUCKETS.services, opts),
    kvm.create(BUCKETS.endpoints, { ...opts, history: 1 }),
  ]);
  const services = new TypedKv(servicesKv, jsonCodec<ServiceRecord>());
  const endpoints = new TypedKv(endpointsKv, jsonCodec<EndpointSet>());
  const log = d.logger.child({ room: "services" });
  const readiness = new ReadinessTracker(d.now);
  const load = new LoadTracker(d.now);
  const stopListening = listenToReadiness(d.nc, readiness, log);
  const gauges = new ModelMetricsGauges(d.edge.metrics.registry);
  const controller = new ServiceController({
    services,
    endpoints,
    jobs: d.jobs,
    repo: d.repo,
    readiness,
    load,
    logger: log,
    now: d.now,
    drainMs: d.drainMs ?? 2_000,
    gauges,
    ...(d.retrain ? { retrain: d.retrain } : {}),
    fireTrigger: (t) => {
      gauges.fired.inc({ tenant: t.tenant, service: t.service });
      log.info({ trigger: t }, "drift over threshold: retraining trigger fired");
      d.nc.publish(subjects.serviceRetrain(t.tenant, t.service), new TextEncoder().encode(JSON.stringify(t)));
    },
  });
  const replicaId = d.replicaId ?? "";
  const api = new ServiceApi(services, endpoints, controller, load, d.now, shareLoad(d.nc, replicaId, log));
  const stopFollowing = followSharedLoad(d.nc, replicaId, load, log);
  const stopLoop = leaderLoop("service controller", () => controller.tick(), {
    isLeader: d.isLeader,
    periodMs: d.tickMs ?? 500,
    logger: log,
  });
  return {
    handlers: serviceHandlers(d.edge, api),
    api,
    /** For ExplainJob: a replica job's service context, as protobuf. */
    replicaContext: async (job: Job) => {
      const c = await api.replicaContext(job);
      return c && replicaContextToPb(c);
    },
    stop: () => {
      stopLoop();
      stopListening();
      stopFollowing();
    },
  };
}
