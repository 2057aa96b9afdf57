/** Shared by the searches: prefilter buckets, score candidates, compare them deterministically. */
import { replicaCost } from "../context.js";
import { BUCKET_FILTERS, CANDIDATE_FILTERS, PRICE_FILTERS } from "../filters/registry.js";
import type { Candidate, RequestContext } from "../pipeline.js";
import { reject } from "../pipeline.js";
import { REASON } from "../reasons.js";
import { seededHash } from "../rng.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Bucket, Offer } from "../state/offer-index.js";

export interface Scored {
  candidate: Candidate;
  /** Weighted score, 0–100. */
  score: number;
  /** Per-scorer scores before weighting. */
  scores: Record<string, number>;
  /** Seeded tie-break key. */
  tie: number;
}

const EPSILON = 1e-9;

/** a better than b: higher score; equal scores break on the seeded key, then the agent id (total order). */
export function better(a: Scored, b: Scored | undefined): boolean {
  if (!b) return true;
  if (a.score > b.score + EPSILON) return true;
  if (a.score < b.score - EPSILON) return false;
  if (a.tie !== b.tie) return a.tie > b.tie;
  return a.candidate.agent.id < b.candidate.agent.id;
}

export function scoreCandidate(ctx: RequestContext, candidate: Candidate, peers: readonly Candidate[]): Scored {
  const scores: Record<string, number> = {};
  let sum = 0;
  for (const { scorer, weight } of ctx.profile.weighted) {
    const s = scorer.score(ctx, candidate, peers);
    scores[scorer.name] = s;
    sum += weight * s;
  }
  return {
    candidate,
    score: sum / ctx.profile.totalWeight,
    scores,
    tie: seededHash(ctx.options.seed, `${candidate.agent.id}/${candidate.model}`),
  };
}

/** Highest weighted score any candidate of the bucket at this price could reach. */
export function levelBound(ctx: RequestContext, bucket: Bucket, price: number): number {
  let sum = 0;
  for (const { scorer, weight } of ctx.profile.weighted) {
    sum += weight * (scorer.bound ? scorer.bound(ctx, bucket, price) : 100);
  }
  return sum / ctx.profile.totalWeight;
}

export function priceCeiling(ctx: RequestContext): number {
  let ceiling = Number.POSITIVE_INFINITY;
  for (const f of PRICE_FILTERS) ceiling = Math.min(ceiling, f.maxPrice!(ctx));
  return ceiling;
}

/**
 * Prefilter: the buckets of the request's price mode that pass every bucket filter (rejections counted with
 * the bucket's size), in a deterministic order. A job naming its GPU models starts from those models' buckets
 * (the index by model) and has the other models' offers counted as rejected without visiting them. Also sets
 * the context's cost reference: the cheapest replica cost any passing bucket offers.
 */
export function prefilter(state: ClusterState, ctx: RequestContext, ceiling: number): Bucket[] {
  const index = state.indexes[ctx.mode];
  let buckets: readonly Bucket[];
  if (ctx.acceptedModels) {
    const models = [...ctx.acceptedModels].sort();
    buckets = models.flatMap((m) => index.byModel.get(m) ?? []);
    const accepted = models.reduce((n, m) => n + (index.offersByModel.get(m) ?? 0), 0);
    reject(ctx, REASON.gpuModelNotAccepted, index.offerCount - accepted);
  } else {
    buckets = index.allBuckets();
  }
  const passed: Bucket[] = [];
  let min = Number.POSITIVE_INFINITY;
  next: for (const bucket of buckets) {
    for (const f of BUCKET_FILTERS) {
      if (!f.bucket!(ctx, bucket)) {
        reject(ctx, f.reason, bucket.size);
        continue next;
      }
    }
    passed.push(bucket);
    if (bucket.minPrice <= ceiling) min = Math.min(min, replicaCost(ctx, bucket.minPrice, bucket.region));
  }
  ctx.cheapestCost = Number.isFinite(min) ? min : 0;
  return passed;
}

/** Counts the offers of a bucket's levels from `from` on as over the price ceiling. */
export function rejectDearLevels(ctx: RequestContext, bucket: Bucket, from: number): void {
  let n = 0;
  for (let i = from; i < bucket.levels.length; i++) n += bucket.levels[i]!.size;
  reject(ctx, REASON.overMaxPrice, n);
}

/** Builds the candidate for an offer at a level, or undefined (counted) if a candidate filter rejects it. */
export function evaluate(
  ctx: RequestContext,
  offer: Offer,
  freeBefore: number,
  avoidProviders: ReadonlySet<string> | undefined,
): Candidate | undefined {
  // A preference, not a constraint: the caller searches again without it, so it is not a counted rejection.
  if (avoidProviders?.has(offer.agent.provider)) return undefined;
  const priced = offer.priceIn(ctx.mode)!;
  const candidate: Candidate = {
    offer,
    agent: offer.agent,
    model: offer.model,
    region: offer.agent.region,
    pricePerGpuHour: priced.price,
    interruptible: priced.interruptible,
    freeBefore,
    cost: replicaCost(ctx, priced.price, offer.agent.region),
  };
  for (const f of CANDIDATE_FILTERS) {
    if (!f.candidate!(ctx, candidate)) {
      reject(ctx, f.reason);
      return undefined;
    }
  }
  return candidate;
}
