/**
 * Search for one replica: a best-first walk over (bucket, price level) pairs ordered by the highest score any
 * of their candidates could reach. Within a level, offers are visited by free-GPU count from the replica's need
 * upwards (best fit first), from a seeded rotation point. The walk stops when the next level's bound cannot
 * beat the runner-up found (so best and runner-up are exact) or after `maxCandidates` feasible candidates
 * (Nomad-style limit).
 */
import type { Candidate, RequestContext } from "../pipeline.js";
import { reject } from "../pipeline.js";
import { REASON } from "../reasons.js";
import type { ClusterState } from "../state/cluster-state.js";
import type { Bucket } from "../state/offer-index.js";
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

export interface ReplicaSearch {
  best: Scored | undefined;
  /** Best candidate on a different agent. */
  runnerUp: Scored | undefined;
  considered: number;
}

export interface ReplicaSearchOptions {
  /** "total": ignore allocations (is the job placeable at all on this fleet?); stops at the first feasible. */
  capacity: "free" | "total";
  /** Providers to stay away from on this pass (inference spreading over providers); not counted as rejections. */
  avoidProviders?: ReadonlySet<string>;
}

export function searchReplica(
  state: ClusterState,
  ctx: RequestContext,
  overlay: PlanOverlay,
  peers: readonly Candidate[],
  rng: () => number,
  options: ReplicaSearchOptions,
): ReplicaSearch {
  const ceiling = priceCeiling(ctx);
  const buckets = prefilter(state, ctx, ceiling);
  const heap = new MaxHeap<{ bucket: Bucket; level: number }>();
  const need = ctx.gpusPerReplica;
  const total = options.capacity === "total";
  for (const bucket of buckets) {
    if (bucket.levels.length === 0) continue;
    // Not enough free GPUs in the whole bucket for one replica: no need to visit it.
    if (!total && overlay.isEmpty() && bucket.freeSum < need) {
      reject(ctx, REASON.insufficientGpus, bucket.size);
      continue;
    }
    if (bucket.levels[0]!.price > ceiling) {
      rejectDearLevels(ctx, bucket, 0);
      continue;
    }
    heap.push(levelBound(ctx, bucket, bucket.levels[0]!.price), { bucket, level: 0 });
  }

  const limit = total ? 1 : ctx.profile.maxCandidates;
  let best: Scored | undefined;
  let runnerUp: Scored | undefined;
  let considered = 0;
  let feasible = 0;

  while (heap.size > 0 && feasible < limit) {
    // Stop once no unvisited level can beat the runner-up (and so the best): both are then exact.
    if (runnerUp && heap.peekKey() < runnerUp.score) break;
    const { bucket, level: at } = heap.pop()!;
    const level = bucket.levels[at]!;
    const next = at + 1;
    if (next < bucket.levels.length) {
      if (bucket.levels[next]!.price <= ceiling)
        heap.push(levelBound(ctx, bucket, bucket.levels[next]!.price), { bucket, level: next });
      else rejectDearLevels(ctx, bucket, next);
    }
    // Offers below the need cannot host the replica unless the plan freed GPUs there (evictions): with an
    // empty overlay they are counted without a visit.
    const from = total || !overlay.isEmpty() ? 0 : need;
    if (!total) reject(ctx, REASON.insufficientGpus, level.countBelow(from));
    for (let f = from; f < level.byFree.length && feasible < limit; f++) {
      const list = level.byFree[f]!;
      const n = list.length;
      if (n === 0) continue;
      const start = Math.floor(rng() * n);
      for (let k = 0; k < n && feasible < limit; k++) {
        const offer = list[(start + k) % n]!;
        considered++;
        const free = total ? overlay.totalFreeOf(offer) : overlay.freeOf(offer);
        const candidate = evaluate(ctx, offer, free, options.avoidProviders);
        if (!candidate) continue;
        feasible++;
        const scored = scoreCandidate(ctx, candidate, peers);
        if (better(scored, best)) {
          if (best && best.candidate.agent.id !== scored.candidate.agent.id) runnerUp = best;
          best = scored;
        } else if (scored.candidate.agent.id !== best!.candidate.agent.id && better(scored, runnerUp)) {
          runnerUp = scored;
        }
      }
    }
  }
  return { best, runnerUp, considered };
}
