/**
 * The service controller (leader only): reconcile → decide → commit, once per tick for every service.
 * - Observe: each replica's job (placement, state, price, spend) and readiness (fenced by agent + epoch).
 * - Decide: per region, the autoscaler's count for the current revision (bounds, budget, delete); which
 *   replicas go (never-placed first, then not ready, then the most expensive); old revisions are retired once the
 *   new one has its count ready (surge, never below the ready count).
 * - Commit: the service record with CAS (a conflict skips this round), then the side effects, each idempotent:
 *   a replica's job is submitted under its recorded request id (a crash in between is healed by the resubmit),
 *   a removed replica leaves the endpoint set first and is cancelled after the drain delay.
 * The endpoint set of every (service, region) is written to `capa_endpoints` whenever it changes.
 */
import type { TypedKv } from "@capa/bus";
import { ConflictError, isFinalJobState, type Job } from "@capa/domain";
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.js";
import { ChangedList } from "../store/changed-list.js";
import type { JobRepo } from "../store/job-repo.js";
import { decideScale, type Recommendation, trimHistory } from "./autoscaler.js";
import { driftTrigger, type ModelMetricsGauges, type RetrainTrigger } from "./drift.js";
import type { LoadTracker } from "./load.js";
import {
  endpointsKey,
  MAX_EVENTS,
  type ReplicaRecord,
  replicaJobSpec,
  type ServiceEvent,
  type ServiceRecord,
  type ServiceSpec,
  serviceKey,
} from "./model.js";
import type { ReadinessTracker } from "./readiness.js";
import { canaryCount, judgeStep, ladder } from "./rollout.js";

export interface EndpointRecord {
  taskId: string;
  jobId: string;
  region: string;
  agentId: string;
  host: string;
  port: number;
  revision: number;
  /** Share of its region's traffic for its revision (100 outside a rollout). */
  trafficPercent: number;
}

export interface EndpointSet {
  service: string;
  tenant: string;
  region: string;
  endpoints: EndpointRecord[];
  updatedAtMs: number;
}

/** A replica as observed this round. */
export interface ReplicaView {
  record: ReplicaRecord;
  job: Job | undefined;
  placed: boolean;
  final: boolean;
  ready: boolean;
  endpoint: EndpointRecord | undefined;
  price: number;
}

export interface ControllerDeps {
  services: TypedKv<ServiceRecord>;
  endpoints: TypedKv<EndpointSet>;
  jobs: JobService;
  repo: JobRepo;
  readiness: ReadinessTracker;
  load: LoadTracker;
  logger: Logger;
  now: () => number;
  /** A removed replica leaves the endpoint set this long before it is cancelled (gateways refresh meanwhile). */
  drainMs: number;
  /** Model-metric gauges (Prometheus); none in unit tests. */
  gauges?: ModelMetricsGauges;
  /** Fires a retraining trigger (NATS publish of its JSON), once the record says it fired. */
  fireTrigger: (t: RetrainTrigger) => void;
  /**
   * Queues a run of the Schedule the drift policy names (idempotent per service revision), before the record
   * says the trigger fired: durable first, so a crash in between repeats the (deduplicated) trigger, never loses it.
   * Answers how it went, for the drift event; throws when the schedules store cannot be reached (retried next round).
   */
  retrain?: (t: RetrainTrigger) => Promise<string>;
}

export class ServiceController {
  private readonly history = new Map<string, Recommendation[]>();
  private readonly written = new Map<string, string>();
  private readonly removingSince = new Map<string, number>();
  /** Per service: traffic percent of replicas in a rolling region (by request id); others get 100. */
  private readonly weights = new Map<string, Map<string, number>>();
  /** The bucket's entries, listed again only when it changed (a tick of an unchanged bucket: one stream info). */
  private readonly listing: ChangedList<ServiceRecord>;

  constructor(private readonly d: ControllerDeps) {
    this.listing = new ChangedList(d.services);
  }

  observe(rec: ReplicaRecord): ReplicaView {
    const entry = rec.jobId ? this.d.repo.get(rec.jobId) : undefined;
    const job = entry?.job;
    const task = job?.tasks[0];
    const placed = !!task && task.agentId !== "" && task.epoch > 0;
    const report = task ? this.d.readiness.get(task.id) : undefined;
    const fenced = !!report && !!task && report.agentId === task.agentId && report.epoch === task.epoch;
    const ready = fenced && report!.ready && task!.state === "running" && !job!.cancelRequested;
    return {
      record: rec,
      job,
      placed,
      final: !!job && isFinalJobState(job.state),
      ready,
      endpoint: ready
        ? {
            taskId: task!.id,
            jobId: job!.id,
            region: task!.region || rec.region,
            agentId: task!.agentId,
            host: report!.host,
            port: report!.port,
            revision: rec.revision,
            trafficPercent: 100,
          }
        : undefined,
      price: task?.pricePerGpuHour ?? 0,
    };
  }

  /** The replica's latest model metrics (from its fresh readiness report). */
  metricsOf(v: ReplicaView): Record<string, number> {
    const task = v.job?.tasks[0];
    const report = task ? this.d.readiness.get(task.id) : undefined;
    return report && report.agentId === task?.agentId && report.epoch === task.epoch ? report.metrics : {};
  }

  async tick(): Promise<void> {
    for (const entry of await this.listing.list()) {
      try {
        await this.reconcileOne(entry.value, entry.revision);
      } catch (err) {
        if (!(err instanceof ConflictError))
          this.d.logger.warn({ err, service: entry.key }, "service reconcile failed; retried next tick");
      }
    }
  }

  private async reconcileOne(original: ServiceRecord, kvRevision: number): Promise<void> {
    const nowMs = this.d.now();
    const rec = structuredClone(original);
    const key = serviceKey(rec.tenant, rec.name);
    const event = (e: Omit<ServiceEvent, "atMs" | "jobId"> & { jobId?: string }) => {
      rec.events.unshift({ atMs: nowMs, jobId: "", ...e });
      rec.events.length = Math.min(rec.events.length, MAX_EVENTS);
    };
    // A replica's job that retired out of the repo's cache is read back first (observe reads memory only).
    for (const r of rec.replicas)
      if (r.jobId && !this.d.repo.get(r.jobId) && this.d.repo.summary(r.jobId)) await this.d.repo.fetch(r.jobId);
    let views = rec.replicas.map((r) => this.observe(r));

    // Replicas whose job ended leave the record (their spend is kept); one that ended unasked is replaced below.
    const ended = new Set(views.filter((x) => x.final).map((x) => x.record));
    for (const v of views.filter((x) => x.final)) {
      rec.spentDropped += v.job!.spent;
      if (!v.record.removing)
        event({ region: v.record.region, kind: "replace", from: 0, to: 0, reason: v.job!.reason, jobId: v.job!.id });
      this.removingSince.delete(v.record.requestId);
    }
    views = views.filter((x) => !x.final);
    const spent = rec.spentDropped + views.reduce((s, v) => s + (v.job?.spent ?? 0), 0);
    if (rec.spec.budget > 0 && spent >= rec.spec.budget && rec.state !== "budget-exhausted") {
      rec.state = "budget-exhausted";
      event({ region: "", kind: "budget", from: 0, to: 0, reason: `spent ${spent} of the budget ${rec.spec.budget}` });
    }
    const stopAll = rec.deleteRequested || rec.state === "budget-exhausted";

    const regionOf = (taskId: string) => views.find((v) => v.job?.tasks[0]?.id === taskId)?.record.region;
    const order = rec.spec.regions.map((r) => r.region);
    const regions = new Set([...order, ...views.map((v) => v.record.region)]);
    const ro = rec.rollout?.phase === "progressing" ? rec.rollout : undefined;
    /** A pending region still serves the old revision; the rolling one both; the others the current one. */
    const role = (region: string): "steady" | "pending" | "rolling" => {
      if (!ro) return "steady";
      const i = order.indexOf(region);
      if (i < 0 || i < ro.regionIndex) return "steady";
      return i === ro.regionIndex ? "rolling" : "pending";
    };
    const weights = new Map<string, number>();
    let allReady = true;
    let rolledBack = false;
    for (const region of regions) {
      const bounds = rec.spec.regions.find((r) => r.region === region);
      const mine = views.filter((v) => v.record.region === region && !v.record.removing);
      const r = role(region);
      const serving = r === "steady" ? rec.revision : ro!.fromRevision;
      const current = mine.filter((v) => v.record.revision === serving);
      const hKey = `${key}/${region}`;
      const history = this.history.get(hKey) ?? [];
      const decision =
        stopAll || !bounds
          ? { replicas: 0, recommendation: 0, reason: stopAll ? "service stopping" : "region removed" }
          : decideScale({
              current: current.length,
              min: bounds.minReplicas,
              max: bounds.maxReplicas,
              target: rec.spec.target,
              load: this.d.load.regionLoad(key, region, regionOf),
              history,
              nowMs,
            });
      history.push({ atMs: nowMs, replicas: decision.recommendation });
      this.history.set(hKey, trimHistory(history, rec.spec.target, nowMs));
      rec.desired[region] = decision.replicas;
      this.resize(rec, region, serving, current, decision, event, nowMs);
      const readyNow = current.filter((v) => v.ready && !v.record.removing).length;
      if (readyNow < decision.replicas) allReady = false;
      if (r === "rolling" && ro && !stopAll) {
        const pct = ladder(rec.spec.rollout)[ro.stepIndex] ?? 100;
        const fresh = mine.filter((v) => v.record.revision === ro.revision);
        const wanted = canaryCount(decision.replicas, pct);
        this.resize(
          rec,
          region,
          ro.revision,
          fresh,
          { replicas: wanted, reason: `rollout of revision ${ro.revision} at ${pct}%` },
          event,
          nowMs,
        );
        for (const v of fresh) weights.set(v.record.requestId, pct);
        for (const v of current) weights.set(v.record.requestId, 100 - pct);
        const tasks = fresh.map((v) => v.job?.tasks[0]?.id).filter((t): t is string => !!t);
        const counts = tasks.map((t) => {
          const total = this.d.load.totals(t);
          const base = ro.baseline[t] ?? { requests: 0, errors: 0 };
          return { requests: total.requests - base.requests, errors: total.errors - base.errors };
        });
        const observation = {
          wanted,
          ready: fresh.filter((v) => v.ready).length,
          requests: counts.reduce((n, c) => n + c.requests, 0),
          errors: counts.reduce((n, c) => n + c.errors, 0),
        };
        if (observation.ready < wanted) ro.readySinceMs = 0;
        else if (ro.readySinceMs === 0) ro.readySinceMs = nowMs;
        const verdict = judgeStep(rec.spec.rollout, ro, region, observation, nowMs, ro.request);
        delete ro.request;
        if (verdict.kind === "rollback") {
          this.rollback(rec, verdict.reason, event, nowMs);
          rolledBack = true;
          break;
        }
        if (verdict.kind === "advance") {
          event({ region, kind: "rollout", from: pct, to: 0, reason: verdict.reason });
          ro.stepIndex++;
          if (ro.stepIndex >= ladder(rec.spec.rollout).length) {
            ro.stepIndex = 0;
            ro.regionIndex++;
          }
          ro.stepStartedAtMs = nowMs;
          ro.readySinceMs = 0;
          ro.baseline = {};
          for (const v of views.filter((x) => x.record.revision === ro.revision)) {
            const t = v.job?.tasks[0]?.id;
            if (t) ro.baseline[t] = this.d.load.totals(t);
          }
          ro.reason = verdict.reason;
          ro.updatedAtMs = nowMs;
          if (ro.regionIndex >= order.length) {
            ro.phase = "promoted";
            const revision = rec.revisions.find((x) => x.revision === ro.revision);
            if (revision) revision.status = "active";
            const from = rec.revisions.find((x) => x.revision === ro.fromRevision);
            if (from) from.status = "superseded";
            event({
              region: "",
              kind: "rollout",
              from: 0,
              to: 100,
              reason: `revision ${ro.revision} promoted in every region`,
            });
          }
        }
        allReady = false;
        continue;
      }
      // Other revisions go once the serving one has its count ready in this region (or nothing is wanted).
      const old = mine.filter((v) => v.record.revision !== serving && !v.record.removing);
      if (old.length > 0 && readyNow >= decision.replicas) {
        for (const v of old) v.record.removing = true;
        event({ region, kind: "revision", from: old.length, to: 0, reason: `revision ${serving} ready (${readyNow})` });
      }
    }
    if (rolledBack) for (const v of views) if (v.record.revision !== rec.revision) v.record.removing = true;
    this.weights.set(key, weights);
    rec.replicas = rec.replicas.filter((r) => !ended.has(r));
    if (!stopAll) rec.state = allReady ? "ready" : "progressing";
    if (rec.deleteRequested && rec.replicas.length === 0) {
      await this.d.services.kv.delete(key, { previousSeq: kvRevision });
      for (const region of regions) await this.writeEndpoints(rec, region, [], nowMs);
      return;
    }
    const withMetrics = views.map((view) => ({ view, metrics: this.metricsOf(view) }));
    this.d.gauges?.set(rec, withMetrics);
    const trigger = stopAll ? undefined : driftTrigger(rec, withMetrics, nowMs);
    if (trigger) {
      const outcome = trigger.trigger && this.d.retrain ? `: ${await this.d.retrain(trigger)}` : "";
      rec.driftFiredRevision = rec.revision;
      event({
        region: trigger.region,
        kind: "drift",
        from: 0,
        to: 0,
        reason: `${trigger.metric} ${trigger.value} > ${trigger.threshold} on ${trigger.taskId}: retraining trigger ${trigger.trigger || "(unnamed)"} fired${outcome}`,
      });
    }
    if (JSON.stringify(strip(rec)) !== JSON.stringify(strip(original))) {
      rec.updatedAtMs = nowMs;
      await this.d.services.update(key, rec, kvRevision);
    }
    // Fired only once the record says so (CAS won): another round or leader never fires it twice.
    if (trigger) this.d.fireTrigger(trigger);
    await this.sideEffects(rec, nowMs);
    const live = rec.replicas.map((r) => this.observe(r));
    for (const region of regions)
      await this.writeEndpoints(
        rec,
        region,
        live
          .filter((v) => v.record.region === region && v.endpoint && !v.record.removing)
          .map((v) => ({ ...v.endpoint!, trafficPercent: this.weights.get(key)?.get(v.record.requestId) ?? 100 })),
        nowMs,
      );
  }

  /** Adds replicas of `revision` in `region` up to the decision, or marks the surplus for removal. */
  private resize(
    rec: ServiceRecord,
    region: string,
    revision: number,
    current: ReplicaView[],
    decision: { replicas: number; reason: string },
    event: (e: Omit<ServiceEvent, "atMs" | "jobId">) => void,
    nowMs: number,
  ): void {
    if (decision.replicas > current.length) {
      event({ region, kind: "scale-up", from: current.length, to: decision.replicas, reason: decision.reason });
      const cause = `scale-up ${current.length}→${decision.replicas} (revision ${revision}): ${decision.reason}`;
      for (let i = current.length; i < decision.replicas; i++)
        rec.replicas.push({
          requestId: `svc-${rec.name}-${rec.nextSeq++}`,
          jobId: "",
          region,
          revision,
          removing: false,
          createdAtMs: nowMs,
          cause,
        });
    } else if (decision.replicas < current.length) {
      event({ region, kind: "scale-down", from: current.length, to: decision.replicas, reason: decision.reason });
      const victims = [...current].sort(
        (a, b) => Number(a.placed) - Number(b.placed) || Number(a.ready) - Number(b.ready) || b.price - a.price,
      );
      for (const v of victims.slice(0, current.length - decision.replicas)) v.record.removing = true;
    }
  }

  /** Back to the revision the rollout started from, everywhere; the new revision's replicas go. */
  private rollback(
    rec: ServiceRecord,
    reason: string,
    event: (e: Omit<ServiceEvent, "atMs" | "jobId">) => void,
    nowMs: number,
  ): void {
    const ro = rec.rollout!;
    const from = rec.revisions.find((x) => x.revision === ro.fromRevision);
    const bad = rec.revisions.find((x) => x.revision === ro.revision);
    if (bad) bad.status = "rolled-back";
    if (from) {
      from.status = "active";
      rec.spec = { ...structuredClone(from.spec), rollout: rec.spec.rollout };
    }
    rec.revision = ro.fromRevision;
    ro.phase = "rolled-back";
    ro.reason = reason;
    ro.updatedAtMs = nowMs;
    event({
      region: "",
      kind: "rollout",
      from: 0,
      to: 0,
      reason: `rolled back to revision ${ro.fromRevision}: ${reason}`,
    });
  }

  /** Submits replicas without a job, cancels drained removed ones. Both are idempotent; failures retry next tick. */
  private async sideEffects(rec: ServiceRecord, nowMs: number): Promise<void> {
    const key = serviceKey(rec.tenant, rec.name);
    const submitted = new Map<string, string>();
    for (const r of rec.replicas.filter((x) => x.jobId === "")) {
      const spec = replicaJobSpec(revisionSpec(rec, r.revision), r.region, r.revision);
      const result = await this.d.jobs.submit({ requestId: r.requestId, tenant: rec.tenant, spec });
      submitted.set(r.requestId, result.job.id);
    }
    if (submitted.size > 0)
      await this.d.services.mutate(key, (cur) => {
        if (!cur) return undefined;
        let changed = false;
        for (const r of cur.replicas) {
          const jobId = submitted.get(r.requestId);
          if (jobId && r.jobId === "") {
            r.jobId = jobId;
            changed = true;
          }
        }
        return changed ? cur : undefined;
      });
    for (const r of rec.replicas.filter((x) => x.removing && x.jobId !== "")) {
      const since = this.removingSince.get(r.requestId) ?? nowMs;
      this.removingSince.set(r.requestId, since);
      const job = this.d.repo.get(r.jobId)?.job;
      if (!job || job.cancelRequested || isFinalJobState(job.state) || nowMs - since < this.d.drainMs) continue;
      await this.d.jobs.cancel(r.jobId, `service ${rec.name}: replica removed`);
    }
  }

  private async writeEndpoints(rec: ServiceRecord, region: string, endpoints: EndpointRecord[], nowMs: number) {
    const key = endpointsKey(rec.tenant, rec.name, region);
    const sorted = [...endpoints].sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
    const signature = JSON.stringify(sorted);
    if (this.written.get(key) === signature) return;
    const set: EndpointSet = { service: rec.name, tenant: rec.tenant, region, endpoints: sorted, updatedAtMs: nowMs };
    // Single writer (the leader's controller): a plain put; the set is derived state, rebuilt every tick.
    await this.d.endpoints.kv.put(key, new TextEncoder().encode(JSON.stringify(set)));
    this.written.set(key, signature);
  }
}

/** The record without what changes every round by itself. */
function strip(rec: ServiceRecord): unknown {
  return { ...rec, updatedAtMs: 0 };
}

/** The spec a replica of `revision` runs (kept in the revision history; the current spec when not found). */
function revisionSpec(rec: ServiceRecord, revision: number): ServiceSpec {
  return rec.revisions.find((r) => r.revision === revision)?.spec ?? rec.spec;
}
