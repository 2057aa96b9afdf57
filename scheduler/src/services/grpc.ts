/** ServiceService over gRPC: protobuf ↔ domain at this edge only; the logic is ServiceApi's. */
import * as pb from "@capa/api";
import { taskStateToPb, templateFromPb, templateToPb } from "@capa/bus";
import { compareKeys, pageByKey, pageByOffset, pageSize } from "../grpc/paging.js";
import { type EdgeContext, unary } from "../grpc/unary.js";
import type { EndpointRecord } from "./controller.js";
import type { ServiceEvent, ServiceSpec, ServiceState } from "./model.js";
import { ladder, type RolloutPhase } from "./rollout.js";
import type { ReplicaContext, ServiceApi, ServiceView } from "./service-api.js";

export function serviceSpecFromPb(s: pb.ServiceSpec | undefined): ServiceSpec | undefined {
  if (!s) return undefined;
  return {
    name: s.name,
    template: templateFromPb(s.template),
    readiness: {
      httpPath: s.readiness?.httpPath ?? "",
      periodMs: s.readiness?.periodMs ?? 0,
      failureThreshold: s.readiness?.failureThreshold ?? 0,
    },
    regions: s.regions.map((r) => ({
      region: r.region,
      minReplicas: r.minReplicas,
      maxReplicas: r.maxReplicas,
      demand: r.demand,
    })),
    minReplicas: s.minReplicas,
    maxReplicas: s.maxReplicas,
    target: {
      requestsPerSecondPerReplica: s.target?.requestsPerSecondPerReplica ?? 0,
      p95LatencyMs: s.target?.p95LatencyMs ?? 0,
      scaleUpWindowMs: s.target?.scaleUpWindowMs ?? 0,
      scaleDownWindowMs: s.target?.scaleDownWindowMs ?? 0,
    },
    gpusPerReplica: s.gpusPerReplica,
    gpuModels: [...s.gpuModels],
    maxPricePerGpuHour: s.maxPriceMicrosPerGpuHour,
    budget: s.budgetMicros,
    modelVersion: s.modelVersion,
    rollout: {
      canaryPercent: s.rollout?.canaryPercent ?? 0,
      steps: [...(s.rollout?.steps ?? [])],
      pauseMs: s.rollout?.pauseMs ?? 0,
      maxErrorRate: s.rollout?.maxErrorRate ?? 0,
      minRequests: s.rollout?.minRequests ?? 0,
      readyTimeoutMs: s.rollout?.readyTimeoutMs ?? 0,
    },
    drift: { metric: s.drift?.metric ?? "", threshold: s.drift?.threshold ?? 0, trigger: s.drift?.trigger ?? "" },
  };
}

export function serviceSpecToPb(s: ServiceSpec): pb.ServiceSpec {
  return {
    name: s.name,
    template: templateToPb(s.template),
    readiness: { ...s.readiness },
    regions: s.regions.map((r) => ({ ...r })),
    minReplicas: s.minReplicas,
    maxReplicas: s.maxReplicas,
    target: { ...s.target },
    gpusPerReplica: s.gpusPerReplica,
    gpuModels: [...s.gpuModels],
    maxPriceMicrosPerGpuHour: s.maxPricePerGpuHour,
    budgetMicros: s.budget,
    modelVersion: s.modelVersion,
    rollout: { ...s.rollout, steps: [...s.rollout.steps] },
    drift: { ...s.drift },
  };
}

const PHASE: Record<RolloutPhase, pb.RolloutPhase> = {
  progressing: pb.RolloutPhase.ROLLOUT_PHASE_PROGRESSING,
  promoted: pb.RolloutPhase.ROLLOUT_PHASE_PROMOTED,
  "rolled-back": pb.RolloutPhase.ROLLOUT_PHASE_ROLLED_BACK,
};

function rolloutToPb(v: ServiceView): pb.RolloutStatus | undefined {
  const ro = v.record.rollout;
  if (!ro) return undefined;
  const order = v.record.spec.regions.map((r) => r.region);
  const progressing = ro.phase === "progressing";
  return {
    revision: ro.revision,
    fromRevision: ro.fromRevision,
    phase: PHASE[ro.phase],
    region: progressing ? (order[ro.regionIndex] ?? "") : "",
    percent: progressing ? (ladder(v.record.spec.rollout)[ro.stepIndex] ?? 100) : 0,
    doneRegions: order.slice(0, ro.phase === "promoted" ? order.length : ro.regionIndex),
    stepStartedAtMs: ro.stepStartedAtMs,
    reason: ro.reason,
    stepRequests: v.step.requests,
    stepErrors: v.step.errors,
    startedAtMs: ro.startedAtMs,
    updatedAtMs: ro.updatedAtMs,
  };
}

const STATE: Record<ServiceState, pb.ServiceState> = {
  progressing: pb.ServiceState.SERVICE_STATE_PROGRESSING,
  ready: pb.ServiceState.SERVICE_STATE_READY,
  "budget-exhausted": pb.ServiceState.SERVICE_STATE_BUDGET_EXHAUSTED,
  deleting: pb.ServiceState.SERVICE_STATE_DELETING,
};

function eventToPb(e: ServiceEvent): pb.ServiceEvent {
  return {
    atMs: e.atMs,
    region: e.region,
    kind: e.kind,
    fromReplicas: e.from,
    toReplicas: e.to,
    reason: e.reason,
    jobId: e.jobId,
  };
}

export function replicaContextToPb(c: ReplicaContext): pb.ReplicaContext {
  return { ...c, events: c.events.map(eventToPb) };
}

export function endpointToPb(e: EndpointRecord): pb.Endpoint {
  return { ...e };
}

export function serviceToPb(v: ServiceView): pb.Service {
  const r = v.record;
  const regions = r.spec.regions.map((reg) => {
    const mine = v.replicas.filter((x) => x.record.region === reg.region && !x.record.removing);
    return {
      region: reg.region,
      desired: r.desired[reg.region] ?? 0,
      ready: mine.filter((x) => x.ready).length,
      requestsPerSecond: mine.reduce((s, x) => s + x.rps, 0),
      p95LatencyMs: Math.round(Math.max(0, ...mine.map((x) => x.p95))),
    };
  });
  return {
    name: r.name,
    tenant: r.tenant,
    spec: serviceSpecToPb(r.spec),
    revision: r.revision,
    state: STATE[r.state],
    regions,
    replicas: v.replicas.map((x) => {
      const task = x.job?.tasks[0];
      return {
        jobId: x.record.jobId,
        taskId: task?.id ?? "",
        region: x.record.region,
        agentId: task?.agentId ?? "",
        taskState: task ? taskStateToPb(task.state) : pb.TaskState.TASK_STATE_PENDING,
        ready: x.ready,
        host: x.endpoint?.host ?? "",
        port: x.endpoint?.port ?? 0,
        priceMicrosPerGpuHour: x.price,
        revision: x.record.revision,
        requestsPerSecond: x.rps,
        p95LatencyMs: Math.round(x.p95),
        modelMetrics: { ...x.metrics },
      };
    }),
    events: r.events.map(eventToPb),
    revisions: r.revisions.map((x) => ({
      revision: x.revision,
      modelVersion: x.modelVersion,
      createdAtMs: x.createdAtMs,
      templateDigest: x.templateDigest,
      status: x.status,
    })),
    spentMicros: v.spent,
    createdAtMs: r.createdAtMs,
    updatedAtMs: r.updatedAtMs,
    rollout: rolloutToPb(v),
  };
}

export function serviceHandlers(ctx: EdgeContext, api: ServiceApi): pb.ServiceServiceServer {
  return {
    applyService: unary(ctx, "ApplyService", async (req: pb.ApplyServiceRequest) => {
      const { view, changed } = await api.apply(req.tenant, serviceSpecFromPb(req.spec));
      return { service: serviceToPb(view), changed };
    }),
    getService: unary(ctx, "GetService", async (req: pb.GetServiceRequest) => ({
      service: serviceToPb(await api.get(req.tenant, req.name)),
    })),
    listServices: unary(ctx, "ListServices", async (req: pb.ListServicesRequest) => {
      const services = (await api.list(req.tenant)).map(serviceToPb);
      const page = pageByKey(
        services.sort((a, b) => compareKeys([a.name], [b.name])),
        {
          pageToken: req.pageToken,
          size: pageSize(req.limit),
          filter: ["services", req.tenant],
          key: (s) => [s.name],
          compare: compareKeys,
        },
      );
      return { services: page.items, nextPageToken: page.nextPageToken };
    }),
    deleteService: unary(ctx, "DeleteService", async (req: pb.DeleteServiceRequest) => ({
      service: serviceToPb(await api.delete(req.tenant, req.name)),
    })),
    listEndpoints: unary(ctx, "ListEndpoints", async (req: pb.ListEndpointsRequest) => {
      const sets = await api.endpointSets(req.tenant, req.name, req.region);
      const page = await pageByOffset(() => sets.flatMap((s) => s.endpoints.map(endpointToPb)), {
        pageToken: req.pageToken,
        size: pageSize(req.limit),
        filter: ["endpoints", req.tenant, req.name, req.region],
      });
      return {
        endpoints: page.items,
        updatedAtMs: Math.max(0, ...sets.map((s) => s.updatedAtMs)),
        nextPageToken: page.nextPageToken,
      };
    }),
    reportLoad: unary(ctx, "ReportLoad", (req: pb.ReportLoadRequest) => {
      api.reportLoad(req.tenant, req.name, {
        gatewayId: req.gatewayId,
        region: req.region,
        windowMs: req.windowMs,
        requests: req.requests,
        replicas: req.replicas.map((r) => ({
          taskId: r.taskId,
          requests: r.requests,
          errors: r.errors,
          p95LatencyMs: r.p95LatencyMs,
        })),
      });
      return {};
    }),
    promoteRollout: unary(ctx, "PromoteRollout", async (req: pb.PromoteRolloutRequest) => ({
      service: serviceToPb(await api.rolloutRequest(req.tenant, req.name, "promote")),
    })),
    abortRollout: unary(ctx, "AbortRollout", async (req: pb.AbortRolloutRequest) => ({
      service: serviceToPb(await api.rolloutRequest(req.tenant, req.name, "abort")),
    })),
  };
}
