/**
 * What a plan under construction has already taken or freed, layered over the (unmodified) ClusterState:
 * later replicas of the same plan see the GPUs earlier ones took, and GPUs of tasks the plan evicts.
 */
import type { AllocationView } from "../model.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Offer } from "../state/offer-index.js";

export class PlanOverlay {
  private readonly used = new Map<Offer, number>();
  private readonly freed = new Map<Offer, number>();
  private readonly takenIndices = new Map<string, Set<number>>();
  readonly evicted = new Map<string, AllocationView>();

  constructor(private readonly state: ClusterState) {}

  /** GPUs of the offer this plan can still use. */
  freeOf(offer: Offer): number {
    return offer.free + (this.freed.get(offer) ?? 0) - (this.used.get(offer) ?? 0);
  }

  /** GPUs of the offer this plan can use if every allocation were gone (is the job placeable at all?). */
  totalFreeOf(offer: Offer): number {
    return offer.healthyIndices.length - (this.used.get(offer) ?? 0);
  }

  /** Counts GPUs as used without choosing indices (for "total" capacity checks). */
  reserve(offer: Offer, count: number): void {
    this.used.set(offer, (this.used.get(offer) ?? 0) + count);
  }

  isEmpty(): boolean {
    return this.used.size === 0 && this.evicted.size === 0;
  }

  /** Takes `count` GPUs of the offer, lowest indices first; returns them. */
  take(offer: Offer, count: number): number[] {
    const taken = this.takenIndices.get(offer.agentId) ?? new Set<number>();
    const chosen: number[] = [];
    for (const index of offer.healthyIndices) {
      if (chosen.length === count) break;
      if (taken.has(index)) continue;
      const holder = this.state.holderOf(offer.agentId, index);
      if (holder !== undefined && !this.evicted.has(holder)) continue;
      chosen.push(index);
    }
    if (chosen.length < count) throw new Error(`internal: offer ${offer.agentId}/${offer.model} has too few GPUs`);
    for (const index of chosen) taken.add(index);
    this.takenIndices.set(offer.agentId, taken);
    this.used.set(offer, (this.used.get(offer) ?? 0) + count);
    return chosen;
  }

  /** Marks an allocation as evicted by this plan: its healthy GPUs become usable. */
  evict(allocation: AllocationView): void {
    if (this.evicted.has(allocation.taskId)) return;
    this.evicted.set(allocation.taskId, allocation);
    const perOffer = new Map<Offer, number>();
    for (const index of allocation.gpuIndices) {
      for (const offer of this.state.offersOf(allocation.agentId)) {
        if (offer.healthyIndices.includes(index)) perOffer.set(offer, (perOffer.get(offer) ?? 0) + 1);
      }
    }
    for (const [offer, n] of perOffer) this.freed.set(offer, (this.freed.get(offer) ?? 0) + n);
  }
}
