/**
 * Gang preemption: the fabric domain (or, when spanning is allowed, the region) where hosting the whole gang
 * loses the least work. Per agent, replica slots come first from free GPUs (no loss), then from evicting victim
 * units cheapest-loss-per-GPU first; the gang takes the N slots of least marginal loss.
 */
import type { Candidate, RequestContext } from "../pipeline.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Offer } from "../state/offer-index.js";
import type { PlanOverlay } from "./overlay.js";
import { type VictimUnit, victimUnits } from "./preempt.js";
import { evaluate, prefilter, priceCeiling, type Scored, scoreCandidate } from "./scoring.js";

export interface PreemptingGang {
  members: Scored[];
  victims: VictimUnit[];
  lostCost: number;
  score: number;
}

interface OfferSlots {
  offer: Offer;
  candidate: Candidate;
  /** Marginal loss of the k-th slot, and how many of `units` it needs evicted. */
  slots: Array<{ loss: number; unitsNeeded: number }>;
  units: VictimUnit[];
}

export function searchPreemptingGang(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  replicas: number,
  allowVictims = true,
): { best: PreemptingGang | undefined; considered: number } {
  const ceiling = priceCeiling(ctx);
  const quiet: RequestContext = { ...ctx, rejections: {} };
  let best: PreemptingGang | undefined;
  let considered = 0;
  for (const bucket of prefilter(state, quiet, ceiling)) {
    const domains = bucket.domainsByPrice().map((d) => d.offers);
    const groups = ctx.spec.allowFabricSpanning ? [domains.flat(), ...domains] : domains;
    for (const offers of groups) {
      considered += offers.length;
      const perOffer = offers
        .map((o) => slotsOf(state, quiet, overlay, o, ceiling, allowVictims))
        .filter((s) => s !== undefined);
      const gang = cheapestSlots(perOffer, replicas);
      if (!gang) continue;
      const chosen = gang.map((g) => g.candidate);
      const members = chosen.map((c, i) => scoreCandidate(ctx, c, [...chosen.slice(0, i), ...chosen.slice(i + 1)]));
      const score = members.reduce((s, m) => s + m.score, 0) / members.length;
      const victims = dedupe(gang.flatMap((g) => g.victims));
      const lostCost = victims.reduce((s, u) => s + u.lostCost, 0);
      const choice = { members, victims, lostCost, score };
      if (!best || lostCost < best.lostCost || (lostCost === best.lostCost && score > best.score + 1e-9)) {
        best = choice;
      }
    }
  }
  return { best, considered };
}

function slotsOf(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  offer: Offer,
  ceiling: number,
  allowVictims: boolean,
): OfferSlots | undefined {
  const priced = offer.priceIn(ctx.mode);
  if (!priced || priced.price > ceiling) return undefined;
  const need = ctx.gpusPerReplica;
  const free = overlay.freeOf(offer);
  const units = allowVictims ? victimUnits(state, ctx, overlay, offer) : [];
  const evictable = units.reduce((n, u) => n + u.gpusHere, 0);
  const candidate = evaluate(ctx, offer, free + evictable, undefined);
  if (!candidate) return undefined;
  const slots: OfferSlots["slots"] = [];
  for (let k = 0; k < Math.floor(free / need); k++) slots.push({ loss: 0, unitsNeeded: 0 });
  let freed = 0;
  let pendingLoss = 0;
  units.forEach((u, i) => {
    freed += u.gpusHere;
    pendingLoss += u.lostCost;
    while (Math.floor((free + freed) / need) > slots.length) {
      slots.push({ loss: pendingLoss, unitsNeeded: i + 1 });
      pendingLoss = 0;
    }
  });
  return slots.length > 0 ? { offer, candidate, slots, units } : undefined;
}

/** N slots of least total marginal loss, taking each agent's slots in order. */
function cheapestSlots(
  perOffer: OfferSlots[],
  replicas: number,
): Array<{ candidate: Candidate; victims: VictimUnit[] }> | undefined {
  if (perOffer.reduce((n, o) => n + o.slots.length, 0) < replicas) return undefined;
  const taken = perOffer.map(() => 0);
  const out: Array<{ candidate: Candidate; victims: VictimUnit[] }> = [];
  for (let r = 0; r < replicas; r++) {
    let pick = -1;
    for (let i = 0; i < perOffer.length; i++) {
      const next = perOffer[i]!.slots[taken[i]!];
      if (next && (pick < 0 || next.loss < perOffer[pick]!.slots[taken[pick]!]!.loss)) pick = i;
    }
    const o = perOffer[pick]!;
    const slot = o.slots[taken[pick]!]!;
    const before = taken[pick]! > 0 ? o.slots[taken[pick]! - 1]!.unitsNeeded : 0;
    out.push({ candidate: o.candidate, victims: o.units.slice(before, slot.unitsNeeded) });
    taken[pick]!++;
  }
  return out;
}

function dedupe(units: VictimUnit[]): VictimUnit[] {
  const seen = new Set<string>();
  return units.filter((u) => {
    const key = u.allocations.map((a) => a.taskId).join(",");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
