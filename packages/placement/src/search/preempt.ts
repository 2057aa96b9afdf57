/**
 * Preemption: when nothing fits, a job may evict allocations that yield to it — lower priority, or interruptible
 * capacity wanted by a non-interruptible job of at least the same priority. Victims are chosen to minimise the
 * money value of the work they lose: GPUs × time since their last checkpoint (or start) × their price. That one
 * figure weighs lost work and cost together; ties go to the better-scored placement.
 * A victim that is part of a gang takes its whole gang down, so all of its tasks count (and are listed).
 * Allocations already stopping are never victims (again): their GPUs are counted as soon free instead.
 */
import { costForGpuMillis, type Micros } from "@capa/domain";
import type { AllocationView } from "../model.js";
import type { Candidate, RequestContext } from "../pipeline.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Offer } from "../state/offer-index.js";
import type { PlanOverlay } from "./overlay.js";
import { evaluate, prefilter, priceCeiling, type Scored, scoreCandidate } from "./scoring.js";

/** Tasks that go together: one allocation, or every allocation of a gang. */
export interface VictimUnit {
  allocations: AllocationView[];
  /** GPUs of the offer's model on the offer's agent that the unit frees. */
  gpusHere: number;
  lostCost: Micros;
}

export interface PreemptingChoice extends Scored {
  victims: VictimUnit[];
  lostCost: Micros;
}

/** Whether `victim` yields to the job being placed. */
export function yieldsTo(ctx: RequestContext, victim: AllocationView): boolean {
  if (victim.jobId === ctx.request.jobId || victim.stopping) return false;
  if (victim.priority < ctx.spec.priority) return true;
  return victim.interruptible && !ctx.spec.interruptible && victim.priority <= ctx.spec.priority;
}

export function lostCostOf(ctx: RequestContext, a: AllocationView): Micros {
  const since = Math.max(a.lastCheckpointMs, a.startedAtMs);
  const lostMillis = Math.max(0, ctx.nowMs - since);
  return costForGpuMillis(a.pricePerGpuHour, a.gpuIndices.length * Math.round(lostMillis));
}

/** Victim units on an offer's agent that would free GPUs of the offer's model, cheapest loss per GPU first. */
export function victimUnits(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  offer: Offer,
): VictimUnit[] {
  const healthy = new Set(offer.healthyIndices);
  const seenJobs = new Set<string>();
  const units: VictimUnit[] = [];
  for (const a of state.allocationsOn(offer.agentId)) {
    if (overlay.evicted.has(a.taskId) || !yieldsTo(ctx, a)) continue;
    const gpusHere = a.gpuIndices.filter((i) => healthy.has(i)).length;
    if (gpusHere === 0) continue;
    if (a.gang) {
      if (seenJobs.has(a.jobId)) continue;
      seenJobs.add(a.jobId);
      const all = state.allocationsOf(a.jobId);
      // A gang partly stopping is going down already; its GPUs free up without another eviction.
      if (all.some((m) => m.stopping)) continue;
      const members = all.filter((m) => !overlay.evicted.has(m.taskId));
      if (!members.every((m) => yieldsTo(ctx, m))) continue;
      const here = members
        .filter((m) => m.agentId === offer.agentId)
        .reduce((n, m) => n + m.gpuIndices.filter((i) => healthy.has(i)).length, 0);
      const lost = members.reduce((sum, m) => sum + lostCostOf(ctx, m), 0);
      units.push({ allocations: sortByTask(members), gpusHere: here, lostCost: lost });
    } else {
      units.push({ allocations: [a], gpusHere, lostCost: lostCostOf(ctx, a) });
    }
  }
  return units.sort(
    (x, y) =>
      x.lostCost / x.gpusHere - y.lostCost / y.gpusHere ||
      (x.allocations[0]!.taskId < y.allocations[0]!.taskId ? -1 : 1),
  );
}

/**
 * The cheapest set of units freeing at least `needed` GPUs. Exact (every subset) for up to 12 units, which
 * covers any real machine; greedy by loss per GPU beyond.
 */
export function cheapestVictims(units: readonly VictimUnit[], needed: number): VictimUnit[] | undefined {
  if (needed <= 0) return [];
  if (units.reduce((n, u) => n + u.gpusHere, 0) < needed) return undefined;
  if (units.length <= 12) {
    let bestMask = -1;
    let bestCost = Number.POSITIVE_INFINITY;
    let bestCount = Number.POSITIVE_INFINITY;
    for (let mask = 1; mask < 1 << units.length; mask++) {
      let gpus = 0;
      let cost = 0;
      let count = 0;
      for (let i = 0; i < units.length; i++) {
        if (mask & (1 << i)) {
          gpus += units[i]!.gpusHere;
          cost += units[i]!.lostCost;
          count++;
        }
      }
      if (gpus >= needed && (cost < bestCost || (cost === bestCost && count < bestCount))) {
        bestMask = mask;
        bestCost = cost;
        bestCount = count;
      }
    }
    return units.filter((_, i) => bestMask & (1 << i));
  }
  const chosen: VictimUnit[] = [];
  let freed = 0;
  for (const u of units) {
    if (freed >= needed) break;
    chosen.push(u);
    freed += u.gpusHere;
  }
  return chosen;
}

/** Best single replica placement that needs evictions (exhaustive over offers that pass the filters). */
export function searchPreemptingReplica(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  peers: readonly Candidate[],
): { best: PreemptingChoice | undefined; considered: number } {
  const ceiling = priceCeiling(ctx);
  const need = ctx.gpusPerReplica;
  let best: PreemptingChoice | undefined;
  let considered = 0;
  const quiet: RequestContext = { ...ctx, rejections: {} };
  for (const bucket of prefilter(state, quiet, ceiling)) {
    for (const level of bucket.levels) {
      if (level.price > ceiling) break;
      for (const list of level.byFree) {
        for (const offer of list) {
          considered++;
          const free = overlay.freeOf(offer);
          const units = victimUnits(state, quiet, overlay, offer);
          const victims = cheapestVictims(units, need - free);
          if (!victims) continue;
          const freed = victims.reduce((n, u) => n + u.gpusHere, 0);
          const candidate = evaluate(quiet, offer, free + freed, undefined);
          if (!candidate) continue;
          const scored = scoreCandidate(ctx, candidate, peers);
          const lostCost = victims.reduce((sum, u) => sum + u.lostCost, 0);
          const choice: PreemptingChoice = { ...scored, victims, lostCost };
          if (betterPreemption(choice, best)) best = choice;
        }
      }
    }
  }
  return { best, considered };
}

export function betterPreemption(a: PreemptingChoice, b: PreemptingChoice | undefined): boolean {
  if (!b) return true;
  if (a.lostCost !== b.lostCost) return a.lostCost < b.lostCost;
  if (Math.abs(a.score - b.score) > 1e-9) return a.score > b.score;
  if (a.tie !== b.tie) return a.tie > b.tie;
  return a.candidate.agent.id < b.candidate.agent.id;
}

function sortByTask(list: AllocationView[]): AllocationView[] {
  return [...list].sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
}
