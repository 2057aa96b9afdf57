/**
 * Admission: before a job is written, its expected cost is reserved against the tenant's budget (KV
 * `capa_budgets`, CAS), so concurrent submissions can never reserve more than the tenant's monthly cap or
 * hourly rate allows. Over budget → BudgetExceededError (FAILED_PRECONDITION, with the numbers).
 *
 * What is reserved (`admissionReservation`): the quoted expected total when the spec has an expected duration;
 * else the job's own budget; else one hour at the quoted rate. The quote prices the cheapest feasible offers
 * (free ones when the job fits now). When no offer fits yet (e.g. every offer is above the job's max price),
 * the job's max price stands in for the quote, and with neither the reservation is 0. Whatever was reserved,
 * the budget watch extends it hour by hour while the job runs and stops the job when an extension is refused,
 * so settled + reserved never passes the cap; it also refreshes the reservation's hourly rate to the job's
 * actual running rate once tasks are placed, so a reservation of rate 0 cannot bypass the hourly cap.
 *
 * Leaks: a reservation whose job was never written (a crash between reserve and create, a release that failed
 * after a failed create) would hold the tenant's budget for ever. `reconcile` (leader start, then
 * periodically) releases every reservation older than a grace period whose job does not exist in capa_jobs.
 * The release is guarded by the reservation's `reservedAtMs`, so one re-made meanwhile is kept.
 */
import { costForGpuMillis, type JobSpec, type Micros } from "@capa/domain";
import type { BudgetStore } from "@capa/ledger";
import { admissionReservation, type ExpectedCost, expectedCostOf, quote } from "@capa/market";
import type { ClusterStateApi } from "../planner/engine.js";
import type { JobRepo } from "../store/job-repo.js";
import { offerSources, runningAllocations } from "./sources.js";

export interface AdmissionApi {
  /** Reserves the job's expected cost; returns the amount reserved. A retry with the same numbers is a no-op. */
  reserve(tenant: string, jobId: string, spec: JobSpec): Promise<Micros>;
  release(tenant: string, jobId: string): Promise<void>;
}

export class Admission implements AdmissionApi {
  constructor(
    private readonly budgets: BudgetStore,
    private readonly cluster: ClusterStateApi,
    private readonly jobs: JobRepo,
    private readonly now: () => number,
  ) {}

  expectedCost(spec: JobSpec): ExpectedCost {
    const nowMs = this.now();
    const q = quote(spec, offerSources(this.cluster), { running: runningAllocations(this.cluster, this.jobs) }, nowMs);
    if (q.reasonCode === "none" || spec.maxPricePerGpuHour <= 0) return expectedCostOf(q);
    const replicas = Math.max(1, spec.replicas);
    const gpr = Math.max(0, spec.gpusPerReplica);
    const perReplica = costForGpuMillis(spec.maxPricePerGpuHour, gpr * spec.expectedDurationSeconds * 1000);
    return { hourly: spec.maxPricePerGpuHour * gpr * replicas, total: perReplica * replicas };
  }

  async reserve(tenant: string, jobId: string, spec: JobSpec): Promise<Micros> {
    const reservation = admissionReservation(spec, this.expectedCost(spec));
    await this.budgets.reserve(tenant, jobId, reservation, this.now(), spec.budget);
    return reservation.total;
  }

  async release(tenant: string, jobId: string): Promise<void> {
    await this.budgets.release(tenant, jobId, this.now());
  }

  /**
   * Releases reservations older than `graceMs` whose job does not exist. Returns what was released. A job is
   * looked up in memory, then in KV (one written by another replica the watch has not delivered yet).
   */
  async reconcile(graceMs: number): Promise<{ tenant: string; jobId: string; amount: Micros }[]> {
    const released: { tenant: string; jobId: string; amount: Micros }[] = [];
    const nowMs = this.now();
    for (const tenant of await this.budgets.tenants()) {
      const state = await this.budgets.get(tenant, nowMs);
      for (const r of state.reservations) {
        if (nowMs - r.reservedAtMs < graceMs) continue;
        if (await this.jobs.fetch(r.jobId)) continue;
        const op = { kind: "release" as const, jobId: r.jobId, ifReservedAtMs: r.reservedAtMs };
        const outcome = await this.budgets.apply(tenant, op, this.now());
        if (outcome.changed) released.push({ tenant, jobId: r.jobId, amount: r.amount });
      }
    }
    return released;
  }
}
