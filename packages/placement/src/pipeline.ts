/**
 * The extension points of the pipeline, in the style of Nomad's feasibility/rank iterators and the Kubernetes
 * scheduling framework: a request is turned into a RequestContext once, then Filters reject (with a named
 * reason) and Scorers rank (0–100, weighted by the profile). Adding one = one file + one registry line.
 */
import type { JobSpec, Micros } from "@capa/domain";
import type { AgentView, PlacementRequest, PlaceOptions } from "./model.js";
import type { ResolvedProfile } from "./profile.js";
import type { RejectionReason } from "./reasons.js";
import type { Bucket, BucketKey, DomainGroup, Offer, PriceMode } from "./state/offer-index.js";
import type { NetworkTables } from "./tables.js";

/** One replica on one agent's GPUs of one model, at the price the job would pay. */
export interface Candidate {
  offer: Offer;
  agent: AgentView;
  model: string;
  region: string;
  pricePerGpuHour: Micros;
  /** Runs on interruptible capacity at the interruptible price. */
  interruptible: boolean;
  /** GPUs of the model free for this replica (after earlier replicas of the same plan). */
  freeBefore: number;
  /** GPU-time for the expected duration plus egress of the replica's data from the data region. */
  cost: Micros;
}

/** Everything about one request that filters and scorers need, computed once per decision. */
export interface RequestContext {
  readonly request: PlacementRequest;
  readonly spec: JobSpec;
  readonly options: PlaceOptions;
  readonly profile: ResolvedProfile;
  readonly tables: NetworkTables;
  readonly nowMs: number;
  readonly maxAdvertAgeMs: number;
  readonly mode: PriceMode;
  readonly gpusPerReplica: number;
  readonly durationSeconds: number;
  readonly dataGb: number;
  readonly acceptedModels: ReadonlySet<string> | undefined;
  readonly allowedRegions: ReadonlySet<string> | undefined;
  readonly excludedRegions: ReadonlySet<string>;
  /** Regions (with weights) whose users the replica serves; empty = latency does not matter. */
  latencyTargets: ReadonlyArray<{ region: string; weight: number }>;
  /** Inference: the one region this replica must go to (its share of the demand). */
  onlyRegion: string | undefined;
  /** Cheapest replica cost among the buckets that passed the prefilter: the cost scorer's reference. */
  cheapestCost: number;
  /** Egress cost per destination region, memoised for this decision. */
  readonly egressByRegion: Map<string, number>;
  /** Rejections by reason, for the explanation. */
  readonly rejections: Record<string, number>;
}

export function reject(ctx: RequestContext, reason: RejectionReason, count = 1): void {
  if (count > 0) ctx.rejections[reason] = (ctx.rejections[reason] ?? 0) + count;
}

/**
 * A feasibility check. Each hook is optional; the search calls the cheapest applicable one so that a rejection
 * happens as high up the index as possible (a whole bucket, a price ceiling, a fabric domain, one candidate).
 */
export interface Filter {
  /** The rejection reason counted when this filter says no (kebab-case, from REASON). */
  readonly reason: RejectionReason;
  /** Decides a whole (model, region, residency) bucket without visiting its offers. */
  bucket?(ctx: RequestContext, bucket: BucketKey): boolean;
  /** A price ceiling per GPU-hour; levels above it (and so every dearer one) are rejected wholesale. */
  maxPrice?(ctx: RequestContext): number;
  /** Decides a fabric domain for a gang (whole gang must fit unless spanning is allowed). */
  domain?(ctx: RequestContext, domain: DomainGroup, slotsNeeded: number): boolean;
  /** Decides one candidate. */
  candidate?(ctx: RequestContext, candidate: Candidate): boolean;
}

/** A ranking. Scores are 0–100 (100 = best); the profile's weights combine them. */
export interface Scorer {
  readonly name: string;
  /** `peers`: the job's other replicas already chosen in this plan (spread, locality). */
  score(ctx: RequestContext, candidate: Candidate, peers: readonly Candidate[]): number;
  /**
   * The best score any candidate of `bucket` at `pricePerGpuHour` could get. Lets the search stop once nothing
   * unvisited can beat the best found. Omit when unknown (100 is assumed).
   */
  bound?(ctx: RequestContext, bucket: Bucket, pricePerGpuHour: number): number;
}
