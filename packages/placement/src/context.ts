/** Builds the per-decision RequestContext from a request, the options and the profile. */
import { costForDuration, type JobSpec, type Micros } from "@capa/domain";
import type { PlacementRequest, PlaceOptions } from "./model.js";
import type { RequestContext } from "./pipeline.js";
import type { ResolvedProfile } from "./profile.js";
import type { PriceMode } from "./state/offer-index.js";
import type { NetworkTables } from "./tables.js";

export const DEFAULT_MAX_ADVERT_AGE_MS = 30_000;

export function buildContext(
  request: PlacementRequest,
  spec: JobSpec,
  options: PlaceOptions,
  profile: ResolvedProfile,
  tables: NetworkTables,
): RequestContext {
  const mode: PriceMode = spec.interruptible ? "interruptible" : "on-demand";
  const demand = Object.entries(spec.demandByRegion)
    .filter(([, weight]) => weight > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([region, weight]) => ({ region, weight }));
  return {
    request,
    spec,
    options,
    profile,
    tables,
    nowMs: options.nowMs,
    maxAdvertAgeMs: options.maxAdvertAgeMs ?? DEFAULT_MAX_ADVERT_AGE_MS,
    mode,
    gpusPerReplica: spec.gpusPerReplica,
    durationSeconds: spec.expectedDurationSeconds > 0 ? spec.expectedDurationSeconds : profile.defaultDurationSeconds,
    dataGb: request.dataGb ?? profile.defaultDataGb,
    acceptedModels: spec.gpuModels.length > 0 ? new Set(spec.gpuModels) : undefined,
    allowedRegions: spec.regions.length > 0 ? new Set(spec.regions) : undefined,
    excludedRegions: new Set(spec.excludeRegions),
    latencyTargets: demand,
    onlyRegion: undefined,
    cheapestCost: 0,
    egressByRegion: new Map(),
    rejections: {},
  };
}

/**
 * Estimated cost of one replica in micros, as a float for ranking: GPU-time for the expected duration plus
 * egress of its data from the data region. The plan's money figures use `exactReplicaCost` (integer micros).
 */
export function replicaCost(ctx: RequestContext, pricePerGpuHour: number, region: string): number {
  const gpuTime = (pricePerGpuHour * ctx.gpusPerReplica * ctx.durationSeconds) / 3600;
  return gpuTime + egressCost(ctx, region);
}

function egressCost(ctx: RequestContext, region: string): number {
  const from = ctx.spec.dataRegion;
  if (from === "" || ctx.dataGb === 0) return 0;
  let cost = ctx.egressByRegion.get(region);
  if (cost === undefined) {
    cost = Math.round(ctx.dataGb * ctx.tables.egressMicrosPerGb(from, region));
    ctx.egressByRegion.set(region, cost);
  }
  return cost;
}

/** Exact integer micros for one replica: rounding rules of @capa/domain's money helpers. */
export function exactReplicaCost(ctx: RequestContext, pricePerGpuHour: Micros, region: string): Micros {
  return costForDuration(pricePerGpuHour, ctx.gpusPerReplica, ctx.durationSeconds) + egressCost(ctx, region);
}
