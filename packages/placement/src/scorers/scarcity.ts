import { replicaCost } from "../context.js";
import type { RequestContext, Scorer } from "../pipeline.js";
import type { Bucket, Pool } from "../state/offer-index.js";
import { costScore } from "./cost.js";

/**
 * Shadow price of a GPU-hour taken from a pool with no GPU left after it (micros): $2, halved with one GPU left,
 * a third with two. Measured on the bench (three seeds of six fleets): $1, or $1 decaying over two GPUs, still
 * turned away more jobs than first-fit on two seeds of three; $3 placed as many but gave up another 0.3 points
 * of saving.
 */
export const SCARCITY_MICROS_PER_GPU_HOUR = 2_000_000;
/** Free GPUs left in a pool at which its shadow price is half the full one. */
export const SCARCITY_GPUS = 1;

/** 0..1: how close taking `need` GPUs brings the pool to empty (1 = nothing left after it). */
function pressure(pool: Pool, need: number): number {
  const after = Math.max(0, pool.free - need);
  return SCARCITY_GPUS / (after + SCARCITY_GPUS);
}

/**
 * The shadow price of the replica's GPUs (micros for its expected duration), from the scarcer of two pools: its
 * GPU model fleet-wide (what a job naming that model can use) and its region, all models (what a region- or
 * residency-bound job can use). Earlier replicas of the same plan are not subtracted: the pools are the index's
 * counts, which is what keeps the score O(1) and its bound exact per bucket.
 */
export function shadowCost(ctx: RequestContext, bucket: Bucket): number {
  const need = ctx.gpusPerReplica;
  if (need === 0) return 0;
  const p = Math.max(pressure(bucket.modelPool, need), pressure(bucket.regionPool, need));
  return (SCARCITY_MICROS_PER_GPU_HOUR * p * need * ctx.durationSeconds) / 3600;
}

/**
 * What the cost score would lose if the shadow price were added to the bill, taken from 100: with the weight of
 * the cost scorer, the two together rank candidates by cost + shadow price, on the cost scorer's own curve.
 * (A shadow price scored on a curve of its own does not trade against money consistently: the cost score
 * flattens for long jobs, so a long job would pay many dollars to dodge a small shadow price.)
 */
function scarcity(ctx: RequestContext, bucket: Bucket | undefined, cost: number): number {
  if (!bucket) return 100;
  return 100 - (costScore(ctx, cost) - costScore(ctx, cost + shadowCost(ctx, bucket)));
}

/**
 * Leave scarce capacity to the jobs that can run nowhere else. Cheapest-first packing fills small, cheap pools
 * (a GPU model with a handful of machines; a region with one) with jobs that could have run almost as cheaply
 * elsewhere; the next job that names that model or region is then turned away. The scorer charges a shadow
 * price that grows as a pool empties, so a flexible job moves when an alternative costs less than the shadow
 * price more, and stays when the move would cost more. Jobs bound to one pool are unaffected (all their
 * candidates pay alike). From the snapshot alone: no queue or demand forecast is needed, which suits online
 * arrival (a job that does not fit is turned away, nothing waits to be counted).
 */
export const scarcityScorer: Scorer = {
  name: "scarcity",
  score: (ctx, c) => scarcity(ctx, c.offer.slots[ctx.mode]?.bucket, c.cost),
  bound: (ctx, bucket, price) => scarcity(ctx, bucket, replicaCost(ctx, price, bucket.region)),
};
