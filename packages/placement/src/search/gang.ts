/**
 * Gang search: N replicas × G GPUs, all or nothing, inside one (model, region) bucket — a gang never spans
 * regions or GPU models (it would run at the pace of its slowest member) — and inside one fabric domain unless
 * the job allows spanning. Domains are visited best bound first (their cheapest price bounds the cost score);
 * a domain whose free-GPU sum cannot hold the gang is skipped without visiting its agents.
 */

import { fabricFilter } from "../filters/fabric.js";
import type { Candidate, RequestContext } from "../pipeline.js";
import { reject } from "../pipeline.js";
import { REASON } from "../reasons.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Bucket, Offer } from "../state/offer-index.js";
import { MaxHeap } from "./heap.js";
import type { PlanOverlay } from "./overlay.js";
import {
  better,
  evaluate,
  levelBound,
  prefilter,
  priceCeiling,
  rejectDearLevels,
  type Scored,
  scoreCandidate,
} from "./scoring.js";

export interface GangChoice {
  /** One per replica, in replica order of the request. */
  members: Scored[];
  score: number;
  /** Fabric domain key, or "*" for a gang spanning domains. */
  domain: string;
  bucket: Bucket;
}

export interface GangSearch {
  best: GangChoice | undefined;
  /** Best gang in another domain or bucket. */
  runnerUp: GangChoice | undefined;
  considered: number;
}

export function searchGang(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  replicas: number,
  options: { capacity: "free" | "total" },
): GangSearch {
  const ceiling = priceCeiling(ctx);
  const buckets = prefilter(state, ctx, ceiling);
  const need = ctx.gpusPerReplica;
  const total = options.capacity === "total";
  const heap = new MaxHeap<{ bucket: Bucket; domain: number }>();
  for (const bucket of buckets) {
    if (bucket.levels.length === 0) continue;
    if (bucket.minPrice > ceiling) {
      rejectDearLevels(ctx, bucket, 0);
      continue;
    }
    if (!total && bucket.freeSum < replicas * need) {
      reject(ctx, REASON.gangDoesNotFitRegion, bucket.size);
      continue;
    }
    heap.push(levelBound(ctx, bucket, bucket.minPrice), { bucket, domain: 0 });
  }

  let best: GangChoice | undefined;
  let runnerUp: GangChoice | undefined;
  let considered = 0;
  let gangs = 0;
  const limit = total ? 1 : ctx.profile.maxCandidates;
  const offered = (choice: GangChoice) => {
    gangs++;
    if (betterGang(choice, best)) {
      runnerUp = best;
      best = choice;
    } else if (betterGang(choice, runnerUp)) {
      runnerUp = choice;
    }
  };

  const spanned = new Set<Bucket>();
  while (heap.size > 0 && gangs < limit) {
    // Stop once no domain left can beat the runner-up (not only the best): the explanation names both.
    if (runnerUp && heap.peekKey() < runnerUp.score) break;
    const { bucket, domain: at } = heap.pop()!;
    const domains = bucket.domainsByPrice();
    const domain = domains[at]!;
    const next = domains[at + 1];
    if (next && next.minPrice <= ceiling) heap.push(levelBound(ctx, bucket, next.minPrice), { bucket, domain: at + 1 });

    // Spanning gangs: once per bucket, every domain of the region pooled together.
    if (ctx.spec.allowFabricSpanning && !spanned.has(bucket)) {
      spanned.add(bucket);
      const pooled = bucket.domainsByPrice().flatMap((d) => d.offers);
      const slots = slotsOf(ctx, overlay, pooled, ceiling, total, false);
      considered += pooled.length;
      const choice = assemble(ctx, slots, replicas, "*", bucket);
      if (choice) offered(choice);
    }

    if (!total && !fabricFilter.domain!(ctx, domain, replicas)) {
      // The domain alone cannot hold the gang: counted once per agent in it (spanning was tried above).
      if (!ctx.spec.allowFabricSpanning) reject(ctx, fabricFilter.reason, domain.offers.length);
      continue;
    }
    considered += domain.offers.length;
    const slots = slotsOf(ctx, overlay, domain.offers, ceiling, total, true);
    const choice = assemble(ctx, slots, replicas, domain.key, bucket);
    if (choice) offered(choice);
    else if (slots.length > 0 && !ctx.spec.allowFabricSpanning) {
      reject(ctx, REASON.fabricDomainTooSmall, new Set(slots.map((s) => s.candidate.agent.id)).size);
    }
  }
  return { best, runnerUp, considered };
}

/** One slot per replica an offer could host, scored alone (peers are added when the gang is assembled). */
function slotsOf(
  ctx: RequestContext,
  overlay: PlanOverlay,
  offers: readonly Offer[],
  ceiling: number,
  total: boolean,
  countRejections: boolean,
): Scored[] {
  const need = ctx.gpusPerReplica;
  const slots: Scored[] = [];
  const noCount: Record<string, number> = {};
  const counted = countRejections ? ctx : { ...ctx, rejections: noCount };
  for (const offer of offers) {
    const priced = offer.priceIn(ctx.mode);
    if (!priced || priced.price > ceiling) {
      if (countRejections) reject(ctx, REASON.overMaxPrice);
      continue;
    }
    let free = total ? overlay.totalFreeOf(offer) : overlay.freeOf(offer);
    const candidate = evaluate(counted, offer, free, undefined);
    if (!candidate) continue;
    while (free >= need) {
      slots.push(scoreCandidate(ctx, { ...candidate, freeBefore: free }, []));
      free -= need;
      if (need === 0) break;
    }
  }
  return slots;
}

/** The best `replicas` slots, then the gang's score with every member scored against the others. */
function assemble(
  ctx: RequestContext,
  slots: Scored[],
  replicas: number,
  domain: string,
  bucket: Bucket,
): GangChoice | undefined {
  if (slots.length < replicas) return undefined;
  slots.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
  const chosen: Candidate[] = slots.slice(0, replicas).map((s) => s.candidate);
  const members = chosen.map((c, i) => scoreCandidate(ctx, c, [...chosen.slice(0, i), ...chosen.slice(i + 1)]));
  const score = members.reduce((sum, m) => sum + m.score, 0) / members.length;
  return { members, score, domain, bucket };
}

function betterGang(a: GangChoice, b: GangChoice | undefined): boolean {
  if (!b) return true;
  if (Math.abs(a.score - b.score) > 1e-9) return a.score > b.score;
  const ta = a.members[0]!.tie;
  const tb = b.members[0]!.tie;
  if (ta !== tb) return ta > tb;
  return `${a.bucket.key}/${a.domain}` < `${b.bucket.key}/${b.domain}`;
}
