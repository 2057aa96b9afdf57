/**
 * The ServiceService operations in domain terms: apply (create, or a new revision when what the replicas run
 * changed), get/list (the durable record plus what is observed now), delete (scale to 0, then removed), the
 * endpoint set (read from `capa_endpoints`, so any scheduler replica answers) and gateway load reports.
 */
import type { TypedKv } from "@capa/bus";
import {
  type FieldViolation,
  type Job,
  NotFoundError,
  PreconditionError,
  tenantViolations,
  throwIfViolations,
} from "@capa/domain";
import type { EndpointSet, ReplicaView, ServiceController } from "./controller.js";
import type { GatewayReport, LoadTracker } from "./load.js";
import {
  endpointsKey,
  MAX_REVISIONS,
  normalizeServiceSpec,
  type ServiceEvent,
  type ServiceRecord,
  type ServiceSpec,
  serviceKey,
  templateDigest,
} from "./model.js";

export interface ReplicaContext {
  service: string;
  revision: number;
  currentRevision: number;
  region: string;
  cause: string;
  removing: boolean;
  events: ServiceEvent[];
}

export interface ServiceView {
  record: ServiceRecord;
  replicas: (ReplicaView & { rps: number; p95: number; metrics: Record<string, number> })[];
  spent: number;
  /** New-revision requests and errors in the rolling region since its step began. */
  step: { requests: number; errors: number };
}

const NAME = /^[a-z0-9-]{1,48}$/;

function nameViolations(tenant: string, name: string): FieldViolation[] {
  const v = tenantViolations(tenant);
  if (!NAME.test(name)) v.push({ field: "name", message: "must be a service name (lower-case letters, digits, '-')" });
  return v;
}

export class ServiceApi {
  constructor(
    private readonly services: TypedKv<ServiceRecord>,
    private readonly endpoints: TypedKv<EndpointSet>,
    private readonly controller: ServiceController,
    private readonly load: LoadTracker,
    private readonly now: () => number,
    /** Passes an accepted report on to the other scheduler replicas (see load-sharing.ts). */
    private readonly share?: (tenant: string, name: string, report: GatewayReport) => void,
  ) {}

  async apply(tenant: string, input: ServiceSpec | undefined): Promise<{ view: ServiceView; changed: boolean }> {
    const spec = normalizeServiceSpec(tenant, input);
    const key = serviceKey(tenant, spec.name);
    let changed = false;
    const nowMs = this.now();
    const entry = await this.services.mutate(key, (cur) => {
      changed = false;
      const digest = templateDigest(spec);
      if (!cur) {
        changed = true;
        return {
          name: spec.name,
          tenant,
          spec,
          revision: 1,
          state: "progressing",
          desired: {},
          replicas: [],
          nextSeq: 0,
          events: [],
          revisions: [
            {
              revision: 1,
              modelVersion: spec.modelVersion,
              createdAtMs: nowMs,
              templateDigest: digest,
              spec,
              status: "active",
            },
          ],
          spentDropped: 0,
          deleteRequested: false,
          createdAtMs: nowMs,
          updatedAtMs: nowMs,
        };
      }
      if (JSON.stringify(cur.spec) === JSON.stringify(spec) && !cur.deleteRequested) return undefined;
      changed = true;
      const next = structuredClone(cur);
      next.spec = spec;
      next.deleteRequested = false;
      if (next.state === "budget-exhausted" || next.state === "deleting") next.state = "progressing";
      if (templateDigest(cur.spec) !== digest) {
        // A rollout in progress is superseded: the new one starts from the revision that was stable.
        const stable = cur.rollout?.phase === "progressing" ? cur.rollout.fromRevision : cur.revision;
        next.revision = Math.max(...cur.revisions.map((r) => r.revision), cur.revision) + 1;
        for (const r of next.revisions) if (r.status === "rolling-out") r.status = "superseded";
        for (const r of next.replicas) if (r.revision !== stable) r.removing = true;
        const rolling = spec.rollout.canaryPercent > 0 && cur.replicas.some((r) => r.revision === stable);
        next.revisions.unshift({
          revision: next.revision,
          modelVersion: spec.modelVersion,
          createdAtMs: nowMs,
          templateDigest: digest,
          spec,
          status: rolling ? "rolling-out" : "active",
        });
        next.revisions.length = Math.min(next.revisions.length, MAX_REVISIONS);
        if (rolling)
          next.rollout = {
            revision: next.revision,
            fromRevision: stable,
            regionIndex: 0,
            stepIndex: 0,
            stepStartedAtMs: nowMs,
            readySinceMs: 0,
            phase: "progressing",
            reason: `revision ${next.revision} (model ${spec.modelVersion || "-"}) rolling out from ${stable}`,
            baseline: {},
            startedAtMs: nowMs,
            updatedAtMs: nowMs,
          };
        else {
          for (const r of next.revisions.slice(1)) if (r.status === "active") r.status = "superseded";
          delete next.rollout;
        }
      }
      next.updatedAtMs = nowMs;
      return next;
    });
    return { view: this.view(entry!.value), changed };
  }

  async get(tenant: string, name: string): Promise<ServiceView> {
    throwIfViolations(nameViolations(tenant, name));
    const entry = await this.services.get(serviceKey(tenant, name));
    if (!entry) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
    return this.view(entry.value);
  }

  async list(tenant: string): Promise<ServiceView[]> {
    throwIfViolations(tenantViolations(tenant));
    return (await this.services.list())
      .filter((e) => e.value.tenant === tenant)
      .map((e) => this.view(e.value))
      .sort((a, b) => (a.record.name < b.record.name ? -1 : 1));
  }

  async delete(tenant: string, name: string): Promise<ServiceView> {
    throwIfViolations(nameViolations(tenant, name));
    const key = serviceKey(tenant, name);
    if (!(await this.services.get(key))) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
    const entry = await this.services.mutate(key, (cur) => {
      if (!cur || cur.deleteRequested) return undefined;
      return { ...cur, deleteRequested: true, state: "deleting", updatedAtMs: this.now() };
    });
    if (!entry) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
    return this.view(entry.value);
  }

  /** Marks a promote or abort for the controller's next round; FAILED_PRECONDITION without a rollout in progress. */
  async rolloutRequest(tenant: string, name: string, request: "promote" | "abort"): Promise<ServiceView> {
    throwIfViolations(nameViolations(tenant, name));
    const key = serviceKey(tenant, name);
    if (!(await this.services.get(key))) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
    const entry = await this.services.mutate(key, (cur) => {
      if (!cur) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
      if (cur.rollout?.phase !== "progressing")
        throw new PreconditionError(`service ${name} has no rollout in progress`);
      const next = structuredClone(cur);
      next.rollout!.request = request;
      return next;
    });
    return this.view(entry!.value);
  }

  async endpointSets(tenant: string, name: string, region: string): Promise<EndpointSet[]> {
    const v = nameViolations(tenant, name);
    if (region !== "" && !/^[A-Za-z0-9_-]{1,64}$/.test(region)) v.push({ field: "region", message: "not a region" });
    throwIfViolations(v);
    const record = (await this.services.get(serviceKey(tenant, name)))?.value;
    if (!record) throw new NotFoundError(`service ${name} not found for tenant ${tenant}`);
    const regions = region ? [region] : [...new Set(record.spec.regions.map((r) => r.region))];
    const sets: EndpointSet[] = [];
    for (const r of regions) {
      const set = (await this.endpoints.get(endpointsKey(tenant, name, r)))?.value;
      if (set) sets.push(set);
    }
    return sets;
  }

  reportLoad(tenant: string, name: string, report: GatewayReport): void {
    const v = nameViolations(tenant, name);
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(report.gatewayId))
      v.push({ field: "gateway_id", message: "must be 1-128 letters, digits, '.', '_' or '-'" });
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(report.region)) v.push({ field: "region", message: "must be a region name" });
    if (report.windowMs < 100 || report.windowMs > 600_000)
      v.push({ field: "window_ms", message: "must be in 100..600000" });
    if (report.replicas.length > 1_000) v.push({ field: "replicas", message: "must have at most 1000 entries" });
    throwIfViolations(v);
    this.load.observe(serviceKey(tenant, name), report);
    this.share?.(tenant, name, report);
  }

  /**
   * For a job that is one of a service's replicas (its env names the service): the decision that added it and
   * the latest scale events of its region; undefined for any other job.
   */
  async replicaContext(job: Job): Promise<ReplicaContext | undefined> {
    const name = job.spec.template.env.CAPA_SERVICE;
    if (!name) return undefined;
    const record = (await this.services.get(serviceKey(job.tenant, name)))?.value;
    if (!record) return undefined;
    const replica = record.replicas.find((r) => r.jobId === job.id);
    const region = replica?.region ?? job.spec.regions[0] ?? "";
    return {
      service: name,
      revision: replica?.revision ?? Number(job.spec.template.env.CAPA_SERVICE_REVISION ?? 0),
      currentRevision: record.revision,
      region,
      cause: replica?.cause ?? (replica ? "" : "no longer a replica of the service (its job ended)"),
      removing: replica?.removing ?? false,
      events: record.events.filter((e) => e.region === region || e.region === "").slice(0, 10),
    };
  }

  private view(record: ServiceRecord): ServiceView {
    const loads = this.load.replicaLoad(serviceKey(record.tenant, record.name));
    const replicas = record.replicas.map((r) => {
      const v = this.controller.observe(r);
      const l = v.job ? loads.get(v.job.tasks[0]?.id ?? "") : undefined;
      return { ...v, rps: l?.rps ?? 0, p95: l?.p95 ?? 0, metrics: this.controller.metricsOf(v) };
    });
    const spent = record.spentDropped + replicas.reduce((s, v) => s + (v.job?.spent ?? 0), 0);
    const ro = record.rollout;
    let step = { requests: 0, errors: 0 };
    if (ro?.phase === "progressing") {
      const region = record.spec.regions[ro.regionIndex]?.region;
      for (const v of replicas) {
        const task = v.job?.tasks[0]?.id;
        if (!task || v.record.revision !== ro.revision || v.record.region !== region) continue;
        const t = this.load.totals(task);
        const b = ro.baseline[task] ?? { requests: 0, errors: 0 };
        step = { requests: step.requests + t.requests - b.requests, errors: step.errors + t.errors - b.errors };
      }
    }
    return { record, replicas, spent, step };
  }
}
